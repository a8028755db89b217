"use strict";
// Shared by the node:test files: the DynamoDB Local endpoint (required: these tests never skip),
// fresh tables, and SDK v2 / v3 document clients on it.

const assert = require("node:assert/strict");
const crypto = require("node:crypto");

const endpoint = process.env.DYNALEASE_TEST_ENDPOINT;
if (!endpoint) {
  throw new Error("DYNALEASE_TEST_ENDPOINT is not set: start DynamoDB Local (scripts/dynamodb-local start) or run scripts/test-node --start-local");
}

const region = "us-east-1";
const credentials = { accessKeyId: "dynalease", secretAccessKey: "dynalease" };
// The native transport signs with the chain's credentials or these same dummy ones.
process.env.AWS_ACCESS_KEY_ID ??= credentials.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY ??= credentials.secretAccessKey;

const dynalease = require("../index.js");

function uniqueName(prefix) {
  return `${prefix}-${crypto.randomBytes(4).toString("hex")}`;
}

async function newTable({ sortKey } = {}) {
  const table = uniqueName("node");
  await dynalease.createTable(table, { partitionKey: "id", sortKey, endpoint, region });
  return table;
}

function sdkV2() {
  const AWS = require("aws-sdk");
  return new AWS.DynamoDB.DocumentClient({ endpoint, region, credentials });
}

function sdkV3() {
  const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
  const { DynamoDBDocument } = require("@aws-sdk/lib-dynamodb");
  return DynamoDBDocument.from(new DynamoDBClient({ endpoint, region, credentials }));
}

// A v3 document client offered only through Promises (no callbacks), like many wrappers.
function promiseOnly(client) {
  return {
    get: (params) => client.get(params),
    put: (params) => client.put(params),
    delete: (params) => client.delete(params),
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function rejectsWithCode(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, err.stack);
    return true;
  });
}

module.exports = { assert, dynalease, endpoint, region, newTable, sdkV2, sdkV3, promiseOnly, sleep, rejectsWithCode, uniqueName };
