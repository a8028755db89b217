"use strict";
// dynamodb-lock-client 0.7.3's option schemas, rewritten for joi 17 so that invalid options give
// the same ValidationError (message and details) as dlc. One change: FailClosed accepts the
// `sortKey` that dlc's README documents and its schema rejected.

const Joi = require("joi");

// @hapi/joi 17.1 (dlc's) said "larger than"; later joi says "greater than". Keep dlc's words.
const messages = { "number.min": "{{#label}} must be larger than or equal to {{#limit}}" };

// What dlc's acquire and release call on the caller's client.
const dynamodb = Joi.object()
  .keys({ delete: Joi.func().required(), get: Joi.func().required(), put: Joi.func().required() })
  .unknown()
  .required();

const LEASE_ATTRIBUTES = ["fencingToken", "leaseDurationMs", "lockAcquiredTimeUnixMs", "owner", "guid"];

const failOpen = Joi.object()
  .keys({
    owner: Joi.string(),
    dynamodb,
    lockTable: Joi.string().required(),
    partitionKey: Joi.string().invalid(...LEASE_ATTRIBUTES).required(),
    sortKey: Joi.string().invalid(...LEASE_ATTRIBUTES),
    heartbeatPeriodMs: Joi.number().integer().min(0),
    leaseDurationMs: Joi.number().integer().min(0).required(),
    trustLocalTime: Joi.boolean(),
    retryCount: Joi.number().integer().min(0),
  })
  .required()
  .messages(messages);

const failClosed = Joi.object()
  .keys({
    owner: Joi.string(),
    dynamodb,
    lockTable: Joi.string().required(),
    partitionKey: Joi.string().invalid("owner", "guid").required(),
    sortKey: Joi.string().invalid("owner", "guid"),
    acquirePeriodMs: Joi.number().integer().min(0).required(),
    retryCount: Joi.number().integer().min(0),
  })
  .required()
  .messages(messages);

module.exports = { failOpen, failClosed };
