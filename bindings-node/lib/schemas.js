"use strict";
// dynamodb-lock-client 0.7.3's option schemas, rewritten for joi 17 so that invalid options give
// the same ValidationError (message and details) as dlc. One change: FailClosed accepts the
// `sortKey` that dlc's README documents and its schema rejected.
//
// Loading joi and building the schemas is most of what `require` of dlc costs (~50 ms of a cold
// start), so joi is loaded only for a config that a plain check below does not pass: a config as
// dlc documents it (a plain object of the right keys and types) needs a few comparisons, and
// everything else still gets joi's verdict and dlc's exact error.

// Item attributes of the lock protocol, which no table key may be named after.
const LEASE_ATTRIBUTES = ["fencingToken", "leaseDurationMs", "lockAcquiredTimeUnixMs", "owner", "guid"];
const FAIL_CLOSED_ATTRIBUTES = ["owner", "guid"];

let joiSchemas;
function schemas() {
  if (joiSchemas) return joiSchemas;
  const Joi = require("joi");

  // @hapi/joi 17.1 (dlc's) said "larger than"; later joi says "greater than". Keep dlc's words.
  const messages = { "number.min": "{{#label}} must be larger than or equal to {{#limit}}" };

  // What dlc's acquire and release call on the caller's client.
  const dynamodb = Joi.object()
    .keys({ delete: Joi.func().required(), get: Joi.func().required(), put: Joi.func().required() })
    .unknown()
    .required();

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
      partitionKey: Joi.string().invalid(...FAIL_CLOSED_ATTRIBUTES).required(),
      sortKey: Joi.string().invalid(...FAIL_CLOSED_ATTRIBUTES),
      acquirePeriodMs: Joi.number().integer().min(0).required(),
      retryCount: Joi.number().integer().min(0),
    })
    .required()
    .messages(messages);

  joiSchemas = { failOpen, failClosed };
  return joiSchemas;
}

// The plain check, rule by rule as joi applies the schemas above with `convert: false`: a
// non-empty string, an integer >= 0 that joi calls safe, a boolean. Each rule may refuse what
// joi would accept (joi then has the last word) but never accepts what joi refuses.
const optional = (rule) => (value) => value === undefined || rule(value);
const name = (value) => typeof value === "string" && value !== "";
const keyName = (reserved) => (value) => name(value) && !reserved.includes(value);
const count = (value) => Number.isSafeInteger(value) && value >= 0;
const boolean = (value) => value === true || value === false;
const client = (value) =>
  typeof value === "object" && value !== null && !Array.isArray(value) &&
  typeof value.delete === "function" && typeof value.get === "function" && typeof value.put === "function";

const RULES = {
  failOpen: {
    owner: optional(name),
    dynamodb: client,
    lockTable: name,
    partitionKey: keyName(LEASE_ATTRIBUTES),
    sortKey: optional(keyName(LEASE_ATTRIBUTES)),
    heartbeatPeriodMs: optional(count),
    leaseDurationMs: count,
    trustLocalTime: optional(boolean),
    retryCount: optional(count),
  },
  failClosed: {
    owner: optional(name),
    dynamodb: client,
    lockTable: name,
    partitionKey: keyName(FAIL_CLOSED_ATTRIBUTES),
    sortKey: optional(keyName(FAIL_CLOSED_ATTRIBUTES)),
    acquirePeriodMs: count,
    retryCount: optional(count),
  },
};

/** True when `config` certainly passes the `kind` schema; false means: ask joi. */
function plainlyValid(kind, config) {
  const rules = RULES[kind];
  if (config === null || typeof config !== "object" || Object.getPrototypeOf(config) !== Object.prototype) return false;
  for (const key of Object.keys(config)) {
    if (!Object.hasOwn(rules, key)) return false;
  }
  for (const key in rules) {
    if (!rules[key](config[key])) return false;
  }
  return true;
}

/** Throws dlc's ValidationError when `config` does not fit the `kind` ("failOpen", "failClosed") schema. */
function validate(kind, config) {
  if (plainlyValid(kind, config)) return;
  const result = schemas()[kind].validate(config, { abortEarly: false, convert: false });
  if (result.error) throw result.error;
}

/** dlc's public `FailOpen.schema` / `FailClosed.schema`: `{ config }`, joi loaded when read. */
function exposed(kind) {
  return Object.defineProperty({}, "config", { enumerable: true, get: () => schemas()[kind] });
}

module.exports = { validate, exposed, plainlyValid, schemas };
