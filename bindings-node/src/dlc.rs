//! The dlc protocol machines of the core (`dynalease::lock::dlc`) as napi classes. The JS
//! drop-in classes (lib/dlc.js) run them: every request goes through the caller's own
//! `dynamodb` object, so DAX clients, middleware and test mocks keep working.
//!
//! A drop-in must cost no more than the few lines of JS dlc runs per request, and its steps run
//! between the SDK's, with caches cold: so a lock crosses to native code as few times as it can
//! (one native object from its acquire to its release; `acquired` carries the held lock's first
//! action), and an action crosses as the JS object lib/dlc.js runs, its request already the
//! DocumentClient's params (plain numbers, strings, Buffers): no JSON to write here, parse there
//! and convert. Only a read item comes in as DynamoDB JSON text (lib/codec.js).

use std::time::Duration;

use dynalease::lock::dlc::{
    Action, DlcKey, DlcTable, FailClosedAcquire, FailClosedConfig, FailOpenAcquire, FailOpenConfig, HeldLock, HeldMode, Input, Now,
    TakeBack, DEFAULT_UNDO_DELAY,
};
use dynalease::protocol::request::{RenderedExpressions, Request, Response};
use dynalease::{AttributeValue, Error};
use napi::bindgen_prelude::{
    Array, Buffer, BufferSlice, Function, JavaScriptClassExt, JsObjectValue, Null, Object, ToNapiValue, Unknown,
};
use napi::{Env, Result};
use napi_derive::napi;

use crate::codec::{attribute_from_json, item_from_json, parse};
use crate::errors::CoreResultExt;

/// dlc's options as lib/dlc.js passes them (validated there against dlc's schema), with the
/// lock mode, the owner it resolved and the fail-closed undo's delay, which is not a dlc option.
#[napi(object)]
pub struct DlcOptions {
    pub fail_closed: bool,
    pub lock_table: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
    pub owner: Option<String>,
    pub lease_duration_ms: Option<f64>,
    pub heartbeat_period_ms: Option<f64>,
    pub trust_local_time: Option<bool>,
    pub retry_count: Option<f64>,
    pub acquire_period_ms: Option<f64>,
    /// The fail-closed undo's delay: 5 s when absent.
    pub undo_delay_ms: Option<f64>,
    /// A lock built by hand (`new Lock(config)`): its token. A missing one counts as 0, as on
    /// acquire.
    pub fencing_token: Option<f64>,
}

fn whole(ms: Option<f64>) -> Option<i64> {
    ms.map(|ms| ms as i64)
}

fn millis(ms: Option<f64>) -> Option<Duration> {
    whole(ms).map(|ms| Duration::from_millis(ms.max(0) as u64))
}

impl DlcOptions {
    fn table(&self) -> DlcTable {
        DlcTable { table: self.lock_table.clone(), partition_key: self.partition_key.clone(), sort_key: self.sort_key.clone() }
    }

    fn owner(&self) -> String {
        self.owner.clone().unwrap_or_default()
    }

    /// How a lock of these options is held once acquired with `fencing_token`.
    fn held_mode(&self, fencing_token: Option<i64>) -> HeldMode {
        if self.fail_closed {
            return HeldMode::FailClosed;
        }
        HeldMode::FailOpen {
            fencing_token: fencing_token.unwrap_or(0),
            lease_duration_ms: whole(self.lease_duration_ms).unwrap_or(0),
            owner: self.owner(),
            heartbeat_period: millis(self.heartbeat_period_ms).filter(|period| !period.is_zero()),
            trust_local_time: self.trust_local_time.unwrap_or(false),
        }
    }

    fn acquire(&self, id: DlcKey) -> Acquire {
        let (table, owner) = (self.table(), self.owner());
        let retry_count = whole(self.retry_count).unwrap_or(1).max(0) as u32;
        if self.fail_closed {
            let acquire_period = millis(self.acquire_period_ms).unwrap_or_default();
            let undo_delay = millis(self.undo_delay_ms).unwrap_or(DEFAULT_UNDO_DELAY);
            return Acquire::FailClosed(FailClosedAcquire::new(FailClosedConfig { table, owner, acquire_period, retry_count, undo_delay }, id));
        }
        let lease_duration_ms = whole(self.lease_duration_ms).unwrap_or(0);
        let trust_local_time = self.trust_local_time.unwrap_or(false);
        Acquire::FailOpen(FailOpenAcquire::new(FailOpenConfig { table, owner, lease_duration_ms, trust_local_time, retry_count }, id))
    }
}

/// `{"partition": <ddb json>, "sort": <ddb json> | null}`.
fn key(text: &str) -> dynalease::Result<DlcKey> {
    let id = parse(text)?;
    let part = |name: &str| id.get(name).filter(|v| !v.is_null());
    let partition = attribute_from_json(part("partition").ok_or_else(|| Error::config("lock id is required"))?)?;
    let sort = part("sort").map(attribute_from_json).transpose()?;
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

/// JS's clocks (`Date.now()`, `performance.now()`) as the machines take them.
fn now(unix_ms: f64, mono_ms: f64) -> Now {
    Now { unix_ms: unix_ms as i64, mono_ms: mono_ms as i64 }
}

/// A value as a DocumentClient takes it: numbers as JS numbers (dlc's items hold small
/// integers), bytes as Buffers of their own (one sliced from Node's shared pool would keep the
/// whole pool chunk alive as long as a lock holds its guid), sets as `Set`s.
fn document_value<'env>(env: &'env Env, value: &AttributeValue) -> Result<Unknown<'env>> {
    // What `Number(text)` gives for the decimal strings DynamoDB numbers are.
    let number = |n: &str| n.parse::<f64>().unwrap_or(f64::NAN);
    let set = |members: Array<'env>| -> Result<Unknown<'env>> {
        env.get_global()?.get_named_property_unchecked::<Function<'env, Array<'env>, Unknown<'env>>>("Set")?.new_instance(members)
    };
    match value {
        AttributeValue::S(s) => s.as_str().into_unknown(env),
        AttributeValue::N(n) => number(n).into_unknown(env),
        AttributeValue::B(b) => BufferSlice::copy_from(env, b)?.into_unknown(env),
        AttributeValue::Bool(b) => b.into_unknown(env),
        AttributeValue::Null => Null.into_unknown(env),
        AttributeValue::L(l) => {
            let mut array = env.create_array(l.len() as u32)?;
            for (i, member) in l.iter().enumerate() {
                array.set(i as u32, document_value(env, member)?)?;
            }
            array.into_unknown(env)
        }
        AttributeValue::M(m) => document_item(env, m.iter())?.into_unknown(env),
        AttributeValue::Ss(v) => set(Array::from_vec(env, v.iter().map(String::as_str).collect())?),
        AttributeValue::Ns(v) => set(Array::from_vec(env, v.iter().map(|n| number(n)).collect())?),
        AttributeValue::Bs(v) => set(Array::from_vec(env, v.iter().map(|b| BufferSlice::copy_from(env, b)).collect::<Result<Vec<_>>>()?)?),
    }
}

fn document_item<'env, 'a>(env: &'env Env, attributes: impl Iterator<Item = (&'a String, &'a AttributeValue)>) -> Result<Object<'env>> {
    let mut object = Object::new(env)?;
    for (name, value) in attributes {
        object.set(name, document_value(env, value)?)?;
    }
    Ok(object)
}

/// Sets `op` and `params` on `action`: the DocumentClient method and its params, keys in dlc's
/// order (see `DlcTable::in_dlc_order`).
fn request_js<'env>(env: &'env Env, request: &Request, table: &DlcTable, action: &mut Object<'env>) -> Result<()> {
    let (op, table_name, key_or_item, condition) = match request {
        Request::GetItem(get) => ("get", &get.table, (c"Key", &get.key), None),
        Request::PutItem(put) => ("put", &put.table, (c"Item", &put.item), put.condition.as_ref()),
        Request::DeleteItem(delete) => ("delete", &delete.table, (c"Key", &delete.key), delete.condition.as_ref()),
        other => unreachable!("dlc machines send no {}", other.operation()),
    };
    let mut params = Object::new(env)?;
    params.set_c_named_property(c"TableName", table_name.as_str())?;
    params.set_c_named_property(key_or_item.0, document_item(env, table.in_dlc_order(key_or_item.1).into_iter())?)?;
    if let Request::GetItem(get) = request {
        params.set_c_named_property(c"ConsistentRead", get.consistent_read)?;
    }
    if let Some(condition) = condition {
        let rendered = RenderedExpressions::new(Some(condition), None, None, None);
        if let Some(condition) = &rendered.condition {
            params.set_c_named_property(c"ConditionExpression", condition.as_str())?;
        }
        // dlc sends these keys only when they have entries; its users' tests compare exactly.
        if !rendered.attributes.names.is_empty() {
            let mut names = Object::new(env)?;
            for (placeholder, name) in &rendered.attributes.names {
                names.set(placeholder, name.as_str())?;
            }
            params.set_c_named_property(c"ExpressionAttributeNames", names)?;
        }
        if !rendered.attributes.values.is_empty() {
            params.set_c_named_property(c"ExpressionAttributeValues", document_item(env, rendered.attributes.values.iter())?)?;
        }
    }
    action.set_c_named_property(c"op", op)?;
    action.set_c_named_property(c"params", params)
}

/// An action as lib/dlc.js runs it: `{type, op, params}` for a request (`send`, `undo`),
/// `{type: "sleep", ms}`, `{type: "acquired", guid, fencingToken}`, and `{type}` for the rest,
/// with `takeBack` (a [`DlcTakeBack`]) on a report that hands one over. `table` is the lock's.
fn action_js<'env>(env: &'env Env, action: Action, table: &DlcTable) -> Result<Object<'env>> {
    let mut object = Object::new(env)?;
    let (kind, take_back) = match action {
        Action::Send(request) => {
            request_js(env, &request, table, &mut object)?;
            ("send", None)
        }
        // Sent like a request, but its error is never the one reported (lib/dlc.js).
        Action::Undo(request) => {
            request_js(env, &request, table, &mut object)?;
            ("undo", None)
        }
        Action::Sleep(duration) => {
            object.set_c_named_property(c"ms", duration.as_millis() as f64)?;
            ("sleep", None)
        }
        Action::Idle => ("idle", None),
        Action::Acquired { guid, fencing_token, .. } => {
            object.set_c_named_property(c"guid", BufferSlice::copy_from(env, guid)?)?;
            if let Some(token) = fencing_token {
                object.set_c_named_property(c"fencingToken", token as f64)?;
            }
            ("acquired", None)
        }
        Action::FailedToAcquire => ("failedToAcquire", None),
        Action::Released => ("released", None),
        Action::FailedToRelease => ("failedToRelease", None),
        Action::HeartbeatFailed => ("heartbeatFailed", None),
        Action::PassError => ("passError", None),
        Action::Abandoned => ("abandoned", None),
        Action::PassErrorAndTakeBack(machine) => ("passError", Some(machine)),
        Action::AbandonedAndTakeBack(machine) => ("abandoned", Some(machine)),
    };
    object.set_c_named_property(c"type", kind)?;
    if let Some(machine) = take_back {
        object.set_c_named_property(c"takeBack", DlcTakeBack { machine, table: table.clone() }.into_instance(env)?)?;
    }
    Ok(object)
}

/// A write of ours to take back (see `dynalease::lock::dlc::TakeBack`), run by the JS layer in
/// the background after the operation reported its outcome.
#[napi]
pub struct DlcTakeBack {
    machine: TakeBack,
    table: DlcTable,
}

#[napi]
impl DlcTakeBack {
    /// The first action.
    #[napi]
    pub fn start<'env>(&mut self, env: &'env Env, now_unix_ms: f64, now_mono_ms: f64) -> Result<Object<'env>> {
        action_js(env, self.machine.start(now(now_unix_ms, now_mono_ms)), &self.table)
    }

    /// Feeds one input, as `next` does the lock.
    #[napi]
    pub fn next<'env>(&mut self, env: &'env Env, input_kind: String, item: Option<String>, now_unix_ms: f64, now_mono_ms: f64) -> Result<Object<'env>> {
        let input = input(&input_kind, item).js()?;
        action_js(env, self.machine.next(input, now(now_unix_ms, now_mono_ms)), &self.table)
    }
}

enum Acquire {
    FailOpen(FailOpenAcquire),
    FailClosed(FailClosedAcquire),
}

// A lock spends its life held, so that state is kept inline and the acquire's is boxed: a
// process holding thousands of locks does not carry an acquire's size in each.
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// `options` and `id` are kept for the held lock.
    Acquiring(Box<Acquiring>),
    Held(HeldLock),
}

struct Acquiring {
    machine: Acquire,
    options: DlcOptions,
    id: DlcKey,
}

/// One dlc lock, from its `acquireLock` call to its release: the acquire's machine, then, once
/// it reports `acquired`, the held lock's (heartbeats and release).
#[napi]
pub struct DlcLock {
    stage: Stage,
    table: DlcTable,
    /// The held item's guid as last handed to JS, which mirrors it as dlc's `_guid`.
    mirrored_guid: Vec<u8>,
}

impl DlcLock {
    fn held(table: DlcTable, machine: HeldLock) -> DlcLock {
        let mirrored_guid = machine.guid().to_vec();
        DlcLock { stage: Stage::Held(machine), table, mirrored_guid }
    }

    fn held_machine(&mut self) -> Result<&mut HeldLock> {
        match &mut self.stage {
            Stage::Held(machine) => Ok(machine),
            Stage::Acquiring(_) => Err(Error::config("the lock is not acquired yet")).js(),
        }
    }

    /// The held lock's action, with the item's new `guid` when the step changed it.
    fn held_action<'env>(&mut self, env: &'env Env, action: Action) -> Result<Object<'env>> {
        let mut object = action_js(env, action, &self.table)?;
        let Stage::Held(machine) = &self.stage else { unreachable!("only a held lock acts as one") };
        if machine.guid() != self.mirrored_guid.as_slice() {
            self.mirrored_guid = machine.guid().to_vec();
            object.set_c_named_property(c"guid", BufferSlice::copy_from(env, &self.mirrored_guid)?)?;
        }
        Ok(object)
    }
}

#[napi]
impl DlcLock {
    /// An `acquireLock` call of a `FailOpen` or `FailClosed` client. `id`: the lock id as
    /// `{"partition": <ddb json>, "sort": <ddb json> | null}`.
    #[napi(constructor)]
    pub fn new(options: DlcOptions, id: String) -> Result<DlcLock> {
        let id = key(&id).js()?;
        let machine = options.acquire(id.clone());
        Ok(DlcLock { table: options.table(), stage: Stage::Acquiring(Box::new(Acquiring { machine, options, id })), mirrored_guid: Vec::new() })
    }

    /// A lock built by hand (`new Lock(config)`), whose lease start is unknown: a release whose
    /// condition fails is then always reported as failed.
    #[napi(factory)]
    pub fn held_by_hand(options: DlcOptions, id: String, guid: Buffer) -> Result<DlcLock> {
        let mode = options.held_mode(whole(options.fencing_token));
        Ok(DlcLock::held(options.table(), HeldLock::new(options.table(), key(&id).js()?, mode, guid.to_vec(), None)))
    }

    /// Feeds one input (`start` to begin an acquire, `timer`, `item` with the read item or
    /// null, `written`, `conditionFailed`, `otherError`); returns the next action. `acquired`
    /// comes with `start`, the held lock's first action: from then on this lock is held and
    /// its inputs are the held lock's.
    #[napi]
    pub fn next<'env>(&mut self, env: &'env Env, input_kind: String, item: Option<String>, now_unix_ms: f64, now_mono_ms: f64) -> Result<Object<'env>> {
        let (input, now) = (input(&input_kind, item).js()?, now(now_unix_ms, now_mono_ms));
        let Stage::Acquiring(acquiring) = &mut self.stage else {
            let action = self.held_machine()?.next(input, now);
            return self.held_action(env, action);
        };
        let Acquiring { machine, options, id } = acquiring.as_mut();
        let action = match machine {
            Acquire::FailOpen(machine) => machine.next(input, now),
            Acquire::FailClosed(machine) => machine.next(input),
        };
        let Action::Acquired { guid, fencing_token, lease_from_mono_ms } = &action else {
            return action_js(env, action, &self.table);
        };
        let held = HeldLock::new(self.table.clone(), id.clone(), options.held_mode(*fencing_token), guid.clone(), Some(*lease_from_mono_ms));
        *self = DlcLock::held(self.table.clone(), held);
        let mut object = action_js(env, action, &self.table)?;
        object.set_c_named_property(c"start", self.start(env)?)?;
        Ok(object)
    }

    /// The held lock's first action: when to send the first heartbeat (`acquired` carries it
    /// as `start`; a lock built by hand asks).
    #[napi]
    pub fn start<'env>(&mut self, env: &'env Env) -> Result<Object<'env>> {
        let action = self.held_machine()?.start();
        self.held_action(env, action)
    }

    #[napi]
    pub fn release<'env>(&mut self, env: &'env Env, now_unix_ms: f64, now_mono_ms: f64) -> Result<Object<'env>> {
        let action = self.held_machine()?.release(now(now_unix_ms, now_mono_ms));
        self.held_action(env, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_of_every_key_type_and_with_a_sort_key() {
        let id = key(r#"{"partition": {"S": "job"}, "sort": null}"#).unwrap();
        assert_eq!(id, DlcKey { partition: AttributeValue::S("job".into()), sort: None });
        let id = key(r#"{"partition": {"N": "7"}, "sort": {"B": "AQI="}}"#).unwrap();
        assert_eq!(id, DlcKey { partition: AttributeValue::N("7".into()), sort: Some(AttributeValue::B(vec![1, 2])) });
        assert!(key(r#"{"sort": null}"#).is_err());
    }

    #[test]
    fn held_mode_follows_the_options() {
        let options = |fail_closed, heartbeat: Option<f64>| DlcOptions {
            fail_closed,
            lock_table: "t".into(),
            partition_key: "id".into(),
            sort_key: None,
            owner: Some("me".into()),
            lease_duration_ms: Some(10_000.0),
            heartbeat_period_ms: heartbeat,
            trust_local_time: None,
            retry_count: None,
            acquire_period_ms: None,
            undo_delay_ms: None,
            fencing_token: None,
        };
        assert_eq!(options(true, Some(5.0)).held_mode(Some(3)), HeldMode::FailClosed);
        let mode = options(false, Some(0.0)).held_mode(None);
        assert_eq!(
            mode,
            HeldMode::FailOpen { fencing_token: 0, lease_duration_ms: 10_000, owner: "me".into(), heartbeat_period: None, trust_local_time: false }
        );
        let HeldMode::FailOpen { heartbeat_period, fencing_token, .. } = options(false, Some(3333.0)).held_mode(Some(4)) else { unreachable!() };
        assert_eq!((heartbeat_period, fencing_token), (Some(Duration::from_millis(3333)), 4));
    }
}
