//! The dlc protocol machines of the core (`dynalease::lock::dlc`) as napi classes. The JS
//! drop-in classes (lib/dlc.js) run them: every request goes through the caller's own
//! `dynamodb` object, so DAX clients, middleware and test mocks keep working.
//!
//! Inputs and actions cross as small JSON documents with DynamoDB-JSON values (see codec.rs);
//! the JS layer turns request params into DocumentClient params.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use dynalease::lock::dlc::{
    Action, DlcKey, DlcTable, FailClosedAcquire, FailClosedConfig, FailOpenAcquire, FailOpenConfig, HeldLock, HeldMode, Input, Now,
    TakeBack, DEFAULT_UNDO_DELAY,
};
use dynalease::protocol::request::{RenderedExpressions, Request, Response};
use dynalease::Error;
use napi::Result;
use napi_derive::napi;
use serde_json::{json, Map, Value as Json};

use crate::codec::{attribute_from_json, attribute_to_json, item_from_json, item_to_json, parse};
use crate::errors::CoreResultExt;

fn field<'a>(json: &'a Json, name: &str) -> Option<&'a Json> {
    json.get(name).filter(|v| !v.is_null())
}

fn string(json: &Json, name: &str) -> dynalease::Result<String> {
    field(json, name).and_then(Json::as_str).map(str::to_owned).ok_or_else(|| Error::config(format!("{name} is required")))
}

fn int(json: &Json, name: &str) -> Option<i64> {
    field(json, name).and_then(Json::as_f64).map(|f| f as i64)
}

fn table(config: &Json) -> dynalease::Result<DlcTable> {
    Ok(DlcTable {
        table: string(config, "lockTable")?,
        partition_key: string(config, "partitionKey")?,
        sort_key: field(config, "sortKey").and_then(Json::as_str).map(str::to_owned),
    })
}

/// `{"partition": <ddb json>, "sort": <ddb json> | null}`.
fn key(id: &Json) -> dynalease::Result<DlcKey> {
    let partition = attribute_from_json(field(id, "partition").ok_or_else(|| Error::config("lock id is required"))?)?;
    let sort = field(id, "sort").map(attribute_from_json).transpose()?;
    Ok(DlcKey { partition, sort })
}

fn input(kind: &str, item: Option<String>) -> dynalease::Result<Input> {
    Ok(match kind {
        "start" => Input::Start,
        "timer" => Input::Timer,
        "written" => Input::Response(Response::Written(None)),
        "item" => Input::Response(Response::GetItem(item.map(|text| item_from_json(&parse(&text)?)).transpose()?)),
        "conditionFailed" => Input::ConditionFailed,
        "otherError" => Input::OtherError,
        other => return Err(Error::config(format!("unknown machine input {other:?}"))),
    })
}

/// A request as DocumentClient params with DynamoDB-JSON values, and the method to call.
fn request_json(request: &Request) -> Json {
    let (op, table, condition) = match request {
        Request::GetItem(get) => {
            return json!({"op": "get", "params": {"TableName": get.table, "Key": item_to_json(&get.key), "ConsistentRead": get.consistent_read}})
        }
        Request::PutItem(put) => ("put", &put.table, put.condition.as_ref()),
        Request::DeleteItem(delete) => ("delete", &delete.table, delete.condition.as_ref()),
        other => unreachable!("dlc machines send no {}", other.operation()),
    };
    let rendered = RenderedExpressions::new(condition, None, None, None);
    let mut params = Map::new();
    params.insert("TableName".into(), json!(table));
    match request {
        Request::PutItem(put) => params.insert("Item".into(), item_to_json(&put.item)),
        Request::DeleteItem(delete) => params.insert("Key".into(), item_to_json(&delete.key)),
        _ => None,
    };
    if let Some(condition) = rendered.condition {
        params.insert("ConditionExpression".into(), json!(condition));
    }
    // dlc sends these keys only when they have entries; its users' tests compare exactly.
    if !rendered.attributes.names.is_empty() {
        params.insert("ExpressionAttributeNames".into(), json!(rendered.attributes.names));
    }
    if !rendered.attributes.values.is_empty() {
        let values = rendered.attributes.values.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect::<Map<_, _>>();
        params.insert("ExpressionAttributeValues".into(), Json::Object(values));
    }
    json!({"op": op, "params": params})
}

/// JS's clocks (`Date.now()`, `performance.now()`) as the machines take them.
fn now(unix_ms: f64, mono_ms: f64) -> Now {
    Now { unix_ms: unix_ms as i64, mono_ms: mono_ms as i64 }
}

/// The action as JSON. A take-back is kept in `take_back` for the caller to run with the
/// owner's `takeBackStart`/`takeBackNext`; the JSON says `"takeBack": true` on the report
/// (`passError` or `abandoned`) it comes with.
fn action_json(action: Action, take_back: &mut Option<TakeBack>) -> String {
    let json = match action {
        Action::Send(request) => {
            let mut json = request_json(&request);
            json["type"] = json!("send");
            json
        }
        // Sent like a request, but its error is never the one reported (lib/dlc.js).
        Action::Undo(request) => {
            let mut json = request_json(&request);
            json["type"] = json!("undo");
            json
        }
        Action::Sleep(duration) => json!({"type": "sleep", "ms": duration.as_millis() as f64}),
        Action::Idle => json!({"type": "idle"}),
        Action::Acquired { guid, fencing_token, lease_from_mono_ms } => json!({
            "type": "acquired",
            "guid": STANDARD.encode(guid),
            "fencingToken": fencing_token,
            "leaseFromMonoMs": lease_from_mono_ms as f64,
        }),
        Action::FailedToAcquire => json!({"type": "failedToAcquire"}),
        Action::Released => json!({"type": "released"}),
        Action::FailedToRelease => json!({"type": "failedToRelease"}),
        Action::HeartbeatFailed => json!({"type": "heartbeatFailed"}),
        Action::PassError => json!({"type": "passError"}),
        Action::Abandoned => json!({"type": "abandoned"}),
        Action::PassErrorAndTakeBack(machine) => {
            *take_back = Some(machine);
            json!({"type": "passError", "takeBack": true})
        }
        Action::AbandonedAndTakeBack(machine) => {
            *take_back = Some(machine);
            json!({"type": "abandoned", "takeBack": true})
        }
    };
    json.to_string()
}

/// Runs the take-back an action handed over (`takeBackStart`, then `takeBackNext` with each
/// outcome): `idle` when there is none.
/// A write of ours to take back (see `dynalease::lock::dlc::TakeBack`), run by the JS layer in
/// the background after the operation reported its outcome.
#[napi]
pub struct DlcTakeBack {
    machine: Option<TakeBack>,
}

#[napi]
impl DlcTakeBack {
    /// The first action (`idle` when there is nothing to take back).
    #[napi]
    pub fn start(&mut self, now_unix_ms: f64, now_mono_ms: f64) -> String {
        let action = self.machine.as_mut().map_or(Action::Idle, |machine| machine.start(now(now_unix_ms, now_mono_ms)));
        action_json(action, &mut None)
    }

    /// Feeds one input, as `next` does the acquire or the lock.
    #[napi]
    pub fn next(&mut self, input_kind: String, item: Option<String>, now_unix_ms: f64, now_mono_ms: f64) -> Result<String> {
        let input = input(&input_kind, item).js()?;
        let action = self.machine.as_mut().map_or(Action::Idle, |machine| machine.next(input, now(now_unix_ms, now_mono_ms)));
        Ok(action_json(action, &mut None))
    }
}

enum Acquire {
    FailOpen(FailOpenAcquire),
    FailClosed(FailClosedAcquire),
}

/// One `acquireLock` call of a `FailOpen` or `FailClosed` client.
#[napi]
pub struct DlcAcquire {
    machine: Acquire,
    take_back: Option<TakeBack>,
}

#[napi]
impl DlcAcquire {
    /// `config`: the client's dlc options as JSON (plus `"failClosed"`, and `"undoDelayMs"`,
    /// the fail-closed undo's delay, which is not a dlc option: 5 s when absent); `id`: the
    /// lock id.
    #[napi(constructor)]
    pub fn new(config: String, id: String) -> Result<DlcAcquire> {
        let (config, id) = (parse(&config).js()?, key(&parse(&id).js()?).js()?);
        let table = table(&config).js()?;
        let owner = string(&config, "owner").js()?;
        let retry_count = int(&config, "retryCount").unwrap_or(1).max(0) as u32;
        let machine = if field(&config, "failClosed").and_then(Json::as_bool).unwrap_or(false) {
            let acquire_period = Duration::from_millis(int(&config, "acquirePeriodMs").unwrap_or(0).max(0) as u64);
            let undo_delay = int(&config, "undoDelayMs").map_or(DEFAULT_UNDO_DELAY, |ms| Duration::from_millis(ms.max(0) as u64));
            Acquire::FailClosed(FailClosedAcquire::new(FailClosedConfig { table, owner, acquire_period, retry_count, undo_delay }, id))
        } else {
            let config = FailOpenConfig {
                table,
                owner,
                lease_duration_ms: int(&config, "leaseDurationMs").unwrap_or(0),
                trust_local_time: field(&config, "trustLocalTime").and_then(Json::as_bool).unwrap_or(false),
                retry_count,
            };
            Acquire::FailOpen(FailOpenAcquire::new(config, id))
        };
        Ok(DlcAcquire { machine, take_back: None })
    }

    /// Feeds one input (`start`, `timer`, `item` with the read item or null, `written`,
    /// `conditionFailed`, `otherError`); returns the next action as JSON.
    #[napi]
    pub fn next(&mut self, input_kind: String, item: Option<String>, now_unix_ms: f64, now_mono_ms: f64) -> Result<String> {
        let input = input(&input_kind, item).js()?;
        let action = match &mut self.machine {
            Acquire::FailOpen(machine) => machine.next(input, now(now_unix_ms, now_mono_ms)),
            Acquire::FailClosed(machine) => machine.next(input),
        };
        Ok(action_json(action, &mut self.take_back))
    }

    /// The take-back the last action handed over (`"takeBack": true`), for the caller to run
    /// in the background.
    #[napi]
    pub fn take_back(&mut self) -> DlcTakeBack {
        DlcTakeBack { machine: self.take_back.take() }
    }
}

/// A held dlc lock: heartbeats and release.
#[napi]
pub struct DlcLock {
    machine: HeldLock,
    take_back: Option<TakeBack>,
}

#[napi]
impl DlcLock {
    /// `config`: the Lock's dlc config as JSON (plus `"failClosed"`); `guid`: base64;
    /// `lease_from_mono_ms`: the acquisition's `leaseFromMonoMs`, if known.
    #[napi(constructor)]
    pub fn new(config: String, id: String, guid: String, lease_from_mono_ms: Option<f64>) -> Result<DlcLock> {
        let (config, id) = (parse(&config).js()?, key(&parse(&id).js()?).js()?);
        let guid = STANDARD.decode(guid).map_err(|_| Error::config("guid is not base64")).js()?;
        let mode = if field(&config, "failClosed").and_then(Json::as_bool).unwrap_or(false) {
            HeldMode::FailClosed
        } else {
            HeldMode::FailOpen {
                // A token that is missing (not a number) counts as 0, as on acquire.
                fencing_token: int(&config, "fencingToken").unwrap_or(0),
                lease_duration_ms: int(&config, "leaseDurationMs").unwrap_or(0),
                owner: field(&config, "owner").and_then(Json::as_str).unwrap_or_default().to_owned(),
                heartbeat_period: int(&config, "heartbeatPeriodMs").filter(|p| *p > 0).map(|p| Duration::from_millis(p as u64)),
                trust_local_time: field(&config, "trustLocalTime").and_then(Json::as_bool).unwrap_or(false),
            }
        };
        Ok(DlcLock { machine: HeldLock::new(table(&config).js()?, id, mode, guid, lease_from_mono_ms.map(|ms| ms as i64)), take_back: None })
    }

    /// When to send the first heartbeat.
    #[napi]
    pub fn start(&self) -> String {
        action_json(self.machine.start(), &mut None)
    }

    #[napi]
    pub fn release(&mut self, now_unix_ms: f64, now_mono_ms: f64) -> String {
        action_json(self.machine.release(now(now_unix_ms, now_mono_ms)), &mut self.take_back)
    }

    #[napi]
    pub fn next(&mut self, input_kind: String, item: Option<String>, now_unix_ms: f64, now_mono_ms: f64) -> Result<String> {
        let input = input(&input_kind, item).js()?;
        Ok(action_json(self.machine.next(input, now(now_unix_ms, now_mono_ms)), &mut self.take_back))
    }

    /// The take-back a failed release handed over (`"takeBack": true`), for the caller to run
    /// in the background.
    #[napi]
    pub fn take_back(&mut self) -> DlcTakeBack {
        DlcTakeBack { machine: self.take_back.take() }
    }

    /// The guid the item carries as far as this lock knows (base64).
    #[napi(getter)]
    pub fn guid(&self) -> String {
        STANDARD.encode(self.machine.guid())
    }
}
