//! The AWS SDK transport: executes [`Request`]s with `aws-sdk-dynamodb`.
//!
//! # Retries and ambiguity
//!
//! The SDK's own retries are disabled: the SDK retries any transient failure, including the
//! timeout or reset of a conditional write. If that write had been applied and only its response
//! was lost, the retry fails its own condition and the engine would report "lock held by someone
//! else" for a lock it holds. So every failed attempt is classified here, once:
//!
//! - **not applied, repeat**: throttling (`ProvisionedThroughputExceededException`,
//!   `ThrottlingException`, `RequestLimitExceeded`, transaction cancellation reasons
//!   `ThrottlingError`/`ProvisionedThroughputExceeded`), transaction conflicts, and failures to
//!   connect (refused, DNS, TLS handshake, connect timeout): DynamoDB never saw or never applied
//!   the request. Retried with full-jitter exponential backoff; when the attempts run out the
//!   result is [`Error::Throttled`], [`Error::Network`] or the last error.
//! - **outcome unknown**: a server error (HTTP 5xx), a timeout, a connection reset or an
//!   unreadable response after the request was sent. For requests that are safe to repeat (reads,
//!   descriptions, and transactions with a `ClientRequestToken`, which DynamoDB deduplicates) this
//!   is retried; for any other write it is [`Error::Ambiguous`] at once, and the engine resolves it
//!   by reading the item back.
//! - **final**: everything else, mapped to the crate's errors in one place (`map_service_error`).

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials};
use aws_sdk_dynamodb::error::{ConnectorError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_table::builders::DeleteTableFluentBuilder;
use aws_sdk_dynamodb::operation::describe_table::builders::DescribeTableFluentBuilder;
use aws_sdk_dynamodb::operation::describe_time_to_live::builders::DescribeTimeToLiveFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_time_to_live::builders::UpdateTimeToLiveFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types as sdk;
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::request::{
    CreateTable, DeleteItem, GetItem, KeyAttribute, PutItem, Query, QueryPage, RenderedExpressions, Request, Response,
    ReturnValues, TableDescription, TableStatus, TimeToLive, TransactItem, TransactWrite, UpdateItem,
};
use crate::transport::Transport;
use crate::value::{AttributeValue, Item, KeyType};

/// How [`NativeTransport`] reaches DynamoDB and how hard it retries.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeConfig {
    /// Overrides the region of the standard chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Sends requests here instead of the regional endpoint (DynamoDB Local, a proxy).
    pub endpoint_url: Option<String>,
    /// The deadline of one attempt: connecting, sending and reading the response.
    pub call_timeout: Duration,
    /// Repeats of a request after a failure that is safe to repeat (throttling, a failed
    /// connect, or any failure of a request DynamoDB deduplicates); 0 sends each request once.
    pub max_retries: u32,
    /// The backoff cap after the first failure; it doubles with every further failure.
    pub base_backoff: Duration,
    /// The largest backoff cap.
    pub max_backoff: Duration,
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            region: None,
            endpoint_url: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A [`Transport`] over the AWS SDK for Rust.
#[derive(Clone, Debug)]
pub struct NativeTransport {
    client: Client,
    config: NativeConfig,
}

/// Repeats after a failure that is safe to repeat: with the default backoff, about 8 s of
/// throttling is ridden out before the caller sees [`Error::Throttled`].
pub const DEFAULT_MAX_RETRIES: u32 = 7;

/// The deadline of one DynamoDB call: DynamoDB answers in milliseconds, so 5 s only passes when
/// the network or the service is in trouble.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The most repeats a client may ask for: each can wait up to `max_backoff`, so more would make
/// one call outlast any reasonable caller.
pub const MAX_RETRIES_LIMIT: u32 = 100;

/// The region used with an explicit endpoint when none is configured: DynamoDB Local and most
/// proxies ignore it, but SigV4 signing needs one.
const FALLBACK_REGION: &str = "us-east-1";

/// The SDK's default connect timeout; lowered when `call_timeout` is short (see `with_policy`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// How long `new` waits for the standard credentials chain before deciding, for a loopback
/// endpoint, that it has no credentials. Off EC2 the IMDS probe alone can take seconds.
const CREDENTIALS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl NativeConfig {
    /// Checks what can be checked before connecting, so that a mistyped endpoint or region
    /// fails when the client is built instead of being retried as a network error.
    pub fn validate(&self) -> Result<()> {
        if self.call_timeout.is_zero() {
            return Err(Error::config("call_timeout must be longer than zero"));
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(Error::config(format!(
                "max_retries is {}; at most {MAX_RETRIES_LIMIT} is allowed (each retry can wait up to {:?}); use 0 to send each request once",
                self.max_retries, self.max_backoff
            )));
        }
        if let Some(region) = &self.region {
            if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(Error::config(format!(
                    "region {region:?} is not a region name; use one such as \"us-east-1\", or omit it to use AWS_REGION or the profile's"
                )));
            }
        }
        if let Some(endpoint) = &self.endpoint_url {
            let parsed = url::Url::parse(endpoint).ok().filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
            if parsed.is_none() {
                return Err(Error::config(format!(
                    "endpoint_url {endpoint:?} is not an http:// or https:// URL; write it in full, e.g. \"http://localhost:8000\" for DynamoDB Local"
                )));
            }
        }
        Ok(())
    }
}

impl NativeTransport {
    /// Builds a client from the standard AWS configuration chain (environment, profile, SSO, web
    /// identity, IMDS), with `config`'s region and endpoint taking precedence.
    pub async fn new(config: NativeConfig) -> Result<NativeTransport> {
        config.validate()?;
        // The endpoint is set on the DynamoDB client only, below: on the loader it would also
        // redirect the STS and SSO calls that credential providers make.
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk_config = loader.load().await;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk_config);

        if sdk_config.region().is_none() {
            if config.endpoint_url.is_none() {
                return Err(Error::config(
                    "no AWS region is configured; set `region`, AWS_REGION or a profile's region",
                ));
            }
            builder = builder.region(Region::new(FALLBACK_REGION));
        }
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint.clone());
            // DynamoDB Local accepts any credentials, but requests must still be signed. Prefer
            // the chain's credentials (DynamoDB Local without -sharedDb keeps one database per
            // access key, which other tools on the machine would share), and fall back to fixed
            // dummy ones so that local development works with no AWS setup at all.
            if is_loopback_endpoint(endpoint) && !chain_has_credentials(&sdk_config).await {
                debug!(endpoint = %endpoint, "no AWS credentials found; using dummy credentials for DynamoDB Local");
                builder = builder.credentials_provider(Credentials::new(
                    "dynalease",
                    "dynalease",
                    None,
                    None,
                    "dynalease-dynamodb-local",
                ));
            }
        }
        let connect_timeout = sdk_config.timeout_config().and_then(TimeoutConfig::connect_timeout);
        Ok(NativeTransport { client: with_policy(builder, connect_timeout, &config), config })
    }

    /// Wraps a client the caller configured. Its retries are replaced by this transport's (see
    /// the module documentation); everything else (credentials, endpoint, HTTP client) is kept.
    /// `config.region` and `config.endpoint_url` are ignored: the client's own apply.
    pub fn from_client(client: Client, config: NativeConfig) -> Result<NativeTransport> {
        config.validate()?;
        if client.config().region().is_none() {
            return Err(Error::config("the DynamoDB client has no region; SigV4 signing needs one"));
        }
        let sdk_config = client.config();
        let connect_timeout = sdk_config.timeout_config().and_then(TimeoutConfig::connect_timeout);
        Ok(NativeTransport { client: with_policy(sdk_config.to_builder(), connect_timeout, &config), config })
    }

    /// The SDK client requests go through (retries disabled).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &NativeConfig {
        &self.config
    }

    /// Sends prepared `call` until it succeeds, fails for good, or runs out of attempts.
    async fn send_with_retries(&self, call: Call, context: &Context) -> Result<Response> {
        let max_attempts = self.config.max_retries.saturating_add(1);
        let mut attempt = 1;
        // Whether an earlier attempt may have been applied: then running out of attempts is an
        // unknown outcome, whatever the last attempt's failure says.
        let mut maybe_applied = false;
        loop {
            let verdict = match tokio::time::timeout(self.config.call_timeout, call.clone().send(context)).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(verdict)) => verdict,
                // Dropping the attempt aborts it wherever it was, possibly after DynamoDB
                // received it.
                Err(_) => context.lost_in_transit(format!("no response within {:?}", self.config.call_timeout)),
            };
            let reason = match verdict {
                Verdict::Final(error) => return Err(context.settle(error, maybe_applied)),
                Verdict::Throttled(message) if attempt >= max_attempts => {
                    let error = Error::Throttled { operation: context.operation, attempts: attempt, message };
                    return Err(context.settle(error, maybe_applied));
                }
                Verdict::MaybeApplied(error) if attempt >= max_attempts => return Err(context.settle(error, true)),
                Verdict::Retry(error) if attempt >= max_attempts => return Err(context.settle(error, maybe_applied)),
                Verdict::MaybeApplied(error) => {
                    maybe_applied = true;
                    error.to_string()
                }
                Verdict::Throttled(message) => message,
                Verdict::Retry(error) => error.to_string(),
            };
            let delay = backoff_delay(&self.config, attempt);
            warn!(
                operation = context.operation,
                table = %context.tables,
                attempt,
                ?delay,
                error = %reason,
                "DynamoDB request failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[async_trait]
impl Transport for NativeTransport {
    async fn execute(&self, request: Request) -> Result<Response> {
        let context = Context::of(&request);
        debug!(operation = context.operation, table = %context.tables, "DynamoDB request");
        let call = prepare(&self.client, request)?;
        self.send_with_retries(call, &context).await
    }

    /// An attempt that timed out may still reach DynamoDB; one that is still on its way a whole
    /// call timeout later is taken to be lost.
    fn late_landing_window(&self) -> Duration {
        self.config.call_timeout
    }
}

/// Applies this transport's policy to an SDK configuration whose connect timeout is `existing`.
fn with_policy(
    builder: aws_sdk_dynamodb::config::Builder,
    existing: Option<Duration>,
    config: &NativeConfig,
) -> Client {
    // A connect that hangs should fail as a connect error (certainly not sent, so retried) before
    // the attempt's deadline turns it into an ambiguous outcome.
    let connect_timeout = existing.unwrap_or(DEFAULT_CONNECT_TIMEOUT).min(config.call_timeout / 2);
    let sdk_config = builder
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().connect_timeout(connect_timeout).build())
        .build();
    Client::from_conf(sdk_config)
}

/// True when the standard chain yields credentials (within [`CREDENTIALS_PROBE_TIMEOUT`]).
async fn chain_has_credentials(sdk_config: &SdkConfig) -> bool {
    let Some(provider) = sdk_config.credentials_provider() else {
        return false;
    };
    matches!(tokio::time::timeout(CREDENTIALS_PROBE_TIMEOUT, provider.provide_credentials()).await, Ok(Ok(_)))
}

/// True for `localhost`, `127.x.x.x` and `[::1]` endpoints: DynamoDB Local, not AWS.
fn is_loopback_endpoint(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The backoff after the `failures`-th failure: full jitter, uniform in `[0, cap]` where the cap
/// doubles from `base_backoff` up to `max_backoff`, so that contending clients spread out.
fn backoff_delay(config: &NativeConfig, failures: u32) -> Duration {
    use rand::Rng;
    let doublings = failures.saturating_sub(1).min(31);
    let cap = config.base_backoff.saturating_mul(1 << doublings).min(config.max_backoff);
    let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(crate::random::with_rng(|rng| rng.random_range(0..=cap_nanos)))
}

// ---------------------------------------------------------------------------------------------
// Classification of failed attempts
// ---------------------------------------------------------------------------------------------

/// What one failed attempt means for the retry loop.
#[derive(Debug)]
enum Verdict {
    /// Report this error now.
    Final(Error),
    /// DynamoDB throttled the request and did not apply it: back off and repeat; when the
    /// attempts run out, report [`Error::Throttled`].
    Throttled(String),
    /// The request was not applied: back off and repeat; when the attempts run out, report
    /// this error.
    Retry(Error),
    /// The request may have been applied, and repeating it is safe (DynamoDB deduplicates it, or
    /// it only reads): back off and repeat; when the attempts run out, the outcome is unknown.
    MaybeApplied(Error),
}

/// What classification needs to know about the request.
#[derive(Clone, Debug)]
struct Context {
    operation: &'static str,
    /// The table(s) the request names, for logs and [`Error::TableNotFound`].
    tables: String,
    /// Sending the request twice has the effect of sending it once.
    safe_to_repeat: bool,
    /// The request changes data (an unanswered attempt leaves its outcome unknown).
    writes: bool,
}

impl Context {
    fn of(request: &Request) -> Context {
        // DynamoDB applies a transaction at most once per ClientRequestToken (for ten minutes),
        // so a repeat after an unknown outcome either applies it or reports the first success.
        let deduplicated = matches!(request, Request::TransactWrite(t) if t.client_request_token.is_some());
        Context {
            operation: request.operation(),
            tables: tables_of(request),
            safe_to_repeat: request.is_idempotent() || deduplicated,
            writes: !request.is_idempotent(),
        }
    }

    /// The request may have reached DynamoDB, but no answer came back.
    fn lost_in_transit(&self, message: String) -> Verdict {
        if self.safe_to_repeat {
            Verdict::MaybeApplied(Error::Network { operation: self.operation, message })
        } else {
            Verdict::Final(Error::Ambiguous { operation: self.operation, message })
        }
    }

    /// DynamoDB answered with a server error: it may or may not have applied the request.
    fn server_error(&self, error: Error, message: String) -> Verdict {
        if self.safe_to_repeat {
            Verdict::MaybeApplied(error)
        } else {
            Verdict::Final(Error::Ambiguous { operation: self.operation, message })
        }
    }

    /// The error to report when the attempts end with `last`: a write of which any attempt may
    /// have been applied has an unknown outcome (a read has no outcome to be unsure of). Even a
    /// failed condition: the attempt that failed it was evaluated, but an earlier one may still
    /// be on its way, and only the caller knows whether its condition can come true again.
    fn settle(&self, last: Error, maybe_applied: bool) -> Error {
        if maybe_applied && self.writes && !last.is_ambiguous() {
            Error::Ambiguous { operation: self.operation, message: format!("an attempt may have been applied before this failure: {last}") }
        } else {
            last
        }
    }
}

fn tables_of(request: &Request) -> String {
    match request {
        Request::GetItem(r) => r.table.clone(),
        Request::PutItem(r) => r.table.clone(),
        Request::UpdateItem(r) => r.table.clone(),
        Request::DeleteItem(r) => r.table.clone(),
        Request::Query(r) => r.table.clone(),
        Request::CreateTable(r) => r.table.clone(),
        Request::DescribeTable { table }
        | Request::DeleteTable { table }
        | Request::UpdateTimeToLive { table, .. }
        | Request::DescribeTimeToLive { table } => table.clone(),
        Request::TransactWrite(t) => {
            let mut tables: Vec<&str> = t
                .items
                .iter()
                .map(|item| match item {
                    TransactItem::ConditionCheck { table, .. } => table.as_str(),
                    TransactItem::Put(p) => &p.table,
                    TransactItem::Update(u) => &u.table,
                    TransactItem::Delete(d) => &d.table,
                })
                .collect();
            tables.sort_unstable();
            tables.dedup();
            tables.join(", ")
        }
    }
}

/// Error codes with which DynamoDB refuses a request for the request rate. Nothing was applied.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    // Too many concurrent table operations (CreateTable, UpdateTimeToLive, ...).
    "LimitExceededException",
];

/// Error codes that reject a request because it conflicts with another one in flight; nothing
/// was applied and the same request can succeed later.
const CONFLICT_CODES: &[&str] = &["TransactionConflictException", "ReplicatedWriteConflictException"];

/// Error codes of server-side failures after which a request may or may not have been applied.
const SERVER_ERROR_CODES: &[&str] = &["InternalServerError", "ServiceUnavailable", "InternalFailure"];

/// Error codes that mean the credentials are missing, wrong or expired.
const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// Transaction cancellation reasons that mean the transaction was refused, not evaluated, and
/// may succeed when repeated.
const THROTTLING_REASONS: &[&str] = &["ThrottlingError", "ProvisionedThroughputExceeded"];
const CONFLICT_REASON: &str = "TransactionConflict";

/// Classifies the failure of one SDK call.
fn classify<E>(context: &Context, error: SdkError<E, HttpResponse>) -> Verdict
where
    E: StdError + ProvideErrorMetadata + Send + Sync + 'static,
    aws_sdk_dynamodb::Error: From<E>,
{
    match error {
        SdkError::ServiceError(failure) => {
            let status = failure.raw().status().as_u16();
            classify_service_error(context, status, failure.into_err().into())
        }
        other => classify_transport_error(context, &other),
    }
}

/// Classifies an error response from DynamoDB.
fn classify_service_error(context: &Context, status: u16, error: aws_sdk_dynamodb::Error) -> Verdict {
    let code = error.code().unwrap_or("no error code");
    let summary = format!("{code}: {}", error.message().unwrap_or("no message"));
    if THROTTLING_CODES.contains(&code) {
        return Verdict::Throttled(summary);
    }
    if CONFLICT_CODES.contains(&code) {
        return Verdict::Retry(map_service_error(context, status, error));
    }
    if code == "TransactionInProgressException" {
        // An earlier attempt with the same ClientRequestToken is still running: it may yet be
        // applied, so this request's outcome is unknown until that one finishes.
        return Verdict::MaybeApplied(Error::Ambiguous { operation: context.operation, message: summary });
    }
    if let aws_sdk_dynamodb::Error::TransactionCanceledException(canceled) = &error {
        let reasons = cancellation_codes(canceled);
        let refused = |r: &String| r == "None" || r == CONFLICT_REASON || THROTTLING_REASONS.contains(&r.as_str());
        if reasons.iter().all(refused) && reasons.iter().any(|r| r != "None") {
            return if reasons.iter().any(|r| THROTTLING_REASONS.contains(&r.as_str())) {
                Verdict::Throttled(format!("TransactionCanceledException with reasons {}", reasons.join(", ")))
            } else {
                Verdict::Retry(Error::TransactionCanceled { reasons })
            };
        }
    }
    if status >= 500 || SERVER_ERROR_CODES.contains(&code) {
        let message = format!("DynamoDB answered HTTP {status} {summary}; the request may have been applied");
        return context.server_error(map_service_error(context, status, error), message);
    }
    Verdict::Final(map_service_error(context, status, error))
}

/// Maps a DynamoDB error response (HTTP `status`) to the crate's error: the one place that does.
fn map_service_error(context: &Context, status: u16, error: aws_sdk_dynamodb::Error) -> Error {
    let operation = context.operation;
    // Responses without a DynamoDB error code come from something in between (a proxy).
    let code = error.code().map_or_else(|| format!("HTTP {status}"), str::to_owned);
    let message = error.message().unwrap_or("no message").to_owned();
    match error {
        aws_sdk_dynamodb::Error::ConditionalCheckFailedException(failed) => match failed.item.map(from_sdk_item) {
            None => Error::ConditionalCheckFailed { item: None },
            Some(Ok(item)) => Error::ConditionalCheckFailed { item: Some(Box::new(item)) },
            Some(Err(unknown)) => unknown.into_error(operation),
        },
        aws_sdk_dynamodb::Error::TransactionCanceledException(canceled) => {
            Error::TransactionCanceled { reasons: cancellation_codes(&canceled) }
        }
        _ if code == "ResourceNotFoundException" => Error::TableNotFound { table: context.tables.clone() },
        _ if code == "ConditionalCheckFailedException" => Error::ConditionalCheckFailed { item: None },
        _ if code == "ValidationException" => Error::Validation { operation, message },
        _ if CREDENTIAL_CODES.contains(&code.as_str()) => Error::Credentials(format!("{code}: {message}")),
        _ => Error::Service { operation, code, message },
    }
}

/// One reason code per action of a cancelled transaction, `None` where DynamoDB gave none.
fn cancellation_codes(canceled: &sdk::error::TransactionCanceledException) -> Vec<String> {
    canceled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect()
}

/// Classifies a failure without an error response: the request was not built, not sent, not
/// answered, or answered unreadably.
fn classify_transport_error<E>(context: &Context, error: &SdkError<E, HttpResponse>) -> Verdict
where
    E: StdError + 'static,
{
    let operation = context.operation;
    let detail = describe(error);
    // Credentials are resolved before sending; their errors surface as dispatch failures.
    if error_chain(error).any(is_credentials_error) {
        return Verdict::Final(Error::Credentials(detail));
    }
    match error {
        SdkError::ConstructionFailure(_) => {
            Verdict::Final(Error::config(format!("could not build the {operation} request: {detail}")))
        }
        // Connecting failed: no byte of the request left this machine.
        SdkError::DispatchFailure(_) if error_chain(error).any(is_connect_failure) => {
            Verdict::Retry(Error::Network { operation, message: detail })
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => {
            Verdict::Final(Error::config(format!("could not send the {operation} request: {detail}")))
        }
        // Timeouts, resets and I/O errors on an established connection, and responses that could
        // not be read: DynamoDB may have received and applied the request.
        _ => context.lost_in_transit(detail),
    }
}

/// Iterates over `error` and its sources. An `io::Error`'s `source()` skips the error it wraps,
/// so the wrapped error is visited explicitly.
fn error_chain<'a>(error: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&error| match error.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
        None => error.source(),
    })
}

/// The messages along the chain of `error`, without the SDK's generic wrappers ("dispatch
/// failure", "io error"): `client error (Connect): tcp connect error: Connection refused`.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    for link in error_chain(error).skip(1).filter(|link| !link.is::<ConnectorError>()) {
        let message = link.to_string();
        // An io::Error displays the error it wraps, which the chain visits next.
        if messages.last() != Some(&message) {
            messages.push(message);
        }
    }
    if messages.is_empty() {
        error.to_string()
    } else {
        messages.join(": ")
    }
}

/// True for one link of a failure to establish a connection (before anything was sent).
fn is_connect_failure(error: &(dyn StdError + 'static)) -> bool {
    use std::io::ErrorKind;
    // Only a connect attempt is refused; an established TCP connection is reset instead.
    // (Unreachable hosts and networks can also be reported on an established connection.)
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        return io.kind() == ErrorKind::ConnectionRefused;
    }
    if error.is::<aws_smithy_runtime_api::client::dns::ResolveDnsError>() {
        return true;
    }
    // hyper-util's client reports every failure of its connector (TCP connect, DNS, TLS
    // handshake, connect timeout) as `client error (Connect)`. Its error type is not reachable
    // from this crate's dependencies (only `is_connect()` tells), so its message is matched.
    error.to_string() == "client error (Connect)"
}

/// True for the error type of AWS credential providers.
fn is_credentials_error(error: &(dyn StdError + 'static)) -> bool {
    // That type lives in aws-credential-types, which is not a direct dependency; it is named
    // here as the error of the future that the SDK's re-exported `ProvideCredentials` returns.
    fn is_error_of<F, T, E>(error: &(dyn StdError + 'static), _provide: fn(&'static Credentials) -> F) -> bool
    where
        F: Future<Output = std::result::Result<T, E>>,
        E: StdError + 'static,
    {
        error.is::<E>()
    }
    is_error_of(error, |credentials| credentials.provide_credentials())
}

// ---------------------------------------------------------------------------------------------
// Requests to SDK calls and outputs to responses
// ---------------------------------------------------------------------------------------------

/// An item as the SDK holds it.
type SdkItem = HashMap<String, sdk::AttributeValue>;

/// A request translated into an SDK call, ready to send (and to clone for another attempt).
#[derive(Clone, Debug)]
enum Call {
    GetItem(GetItemFluentBuilder),
    PutItem(PutItemFluentBuilder),
    UpdateItem(UpdateItemFluentBuilder),
    DeleteItem(DeleteItemFluentBuilder),
    Query(QueryFluentBuilder),
    TransactWrite(TransactWriteItemsFluentBuilder),
    CreateTable(CreateTableFluentBuilder, String),
    DescribeTable(DescribeTableFluentBuilder, String),
    DeleteTable(DeleteTableFluentBuilder),
    UpdateTimeToLive(UpdateTimeToLiveFluentBuilder, String, bool),
    DescribeTimeToLive(DescribeTimeToLiveFluentBuilder),
}

/// Translates `request` into an SDK call, rendering its expressions once.
fn prepare(client: &Client, request: Request) -> Result<Call> {
    Ok(match request {
        Request::GetItem(GetItem { table, key, consistent_read }) => Call::GetItem(
            client.get_item().table_name(table).set_key(Some(to_sdk_item(&key))).consistent_read(consistent_read),
        ),
        Request::PutItem(put) => Call::PutItem(prepare_put(client, put)),
        Request::UpdateItem(update) => Call::UpdateItem(prepare_update(client, update)),
        Request::DeleteItem(delete) => Call::DeleteItem(prepare_delete(client, delete)),
        Request::Query(query) => Call::Query(prepare_query(client, query)),
        Request::TransactWrite(transaction) => Call::TransactWrite(prepare_transaction(client, transaction)?),
        Request::CreateTable(create) => {
            let table = create.table.clone();
            Call::CreateTable(prepare_create_table(client, create)?, table)
        }
        Request::DescribeTable { table } => Call::DescribeTable(client.describe_table().table_name(&table), table),
        Request::DeleteTable { table } => Call::DeleteTable(client.delete_table().table_name(table)),
        Request::UpdateTimeToLive { table, attribute, enabled } => {
            let specification = sdk::TimeToLiveSpecification::builder()
                .attribute_name(&attribute)
                .enabled(enabled)
                .build()
                .map_err(build_error)?;
            Call::UpdateTimeToLive(
                client.update_time_to_live().table_name(table).time_to_live_specification(specification),
                attribute,
                enabled,
            )
        }
        Request::DescribeTimeToLive { table } => {
            Call::DescribeTimeToLive(client.describe_time_to_live().table_name(table))
        }
    })
}

fn build_error(error: aws_smithy_types::error::operation::BuildError) -> Error {
    Error::config(format!("invalid DynamoDB request: {error}"))
}

/// The expression attribute maps, or `None` when empty: DynamoDB rejects empty maps.
fn expression_maps(rendered: &RenderedExpressions) -> (Option<HashMap<String, String>>, Option<SdkItem>) {
    let names = &rendered.attributes.names;
    let values = &rendered.attributes.values;
    let names = (!names.is_empty()).then(|| names.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let values = (!values.is_empty()).then(|| values.iter().map(|(k, v)| (k.clone(), to_sdk_value(v))).collect());
    (names, values)
}

fn return_value(values: ReturnValues) -> sdk::ReturnValue {
    match values {
        ReturnValues::None => sdk::ReturnValue::None,
        ReturnValues::AllOld => sdk::ReturnValue::AllOld,
        ReturnValues::AllNew => sdk::ReturnValue::AllNew,
    }
}

fn return_on_failure(all_old: bool) -> Option<sdk::ReturnValuesOnConditionCheckFailure> {
    all_old.then_some(sdk::ReturnValuesOnConditionCheckFailure::AllOld)
}

fn prepare_put(client: &Client, put: PutItem) -> PutItemFluentBuilder {
    let rendered = RenderedExpressions::new(put.condition.as_ref(), None, None, None);
    let (names, values) = expression_maps(&rendered);
    client
        .put_item()
        .table_name(put.table)
        .set_item(Some(to_sdk_item(&put.item)))
        .set_condition_expression(rendered.condition)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .return_values(return_value(put.return_values))
        .set_return_values_on_condition_check_failure(return_on_failure(put.return_old_on_condition_failure))
}

fn prepare_update(client: &Client, update: UpdateItem) -> UpdateItemFluentBuilder {
    let rendered = RenderedExpressions::new(update.condition.as_ref(), Some(&update.update), None, None);
    let (names, values) = expression_maps(&rendered);
    client
        .update_item()
        .table_name(update.table)
        .set_key(Some(to_sdk_item(&update.key)))
        .set_update_expression(rendered.update)
        .set_condition_expression(rendered.condition)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .return_values(return_value(update.return_values))
        .set_return_values_on_condition_check_failure(return_on_failure(update.return_old_on_condition_failure))
}

fn prepare_delete(client: &Client, delete: DeleteItem) -> DeleteItemFluentBuilder {
    let rendered = RenderedExpressions::new(delete.condition.as_ref(), None, None, None);
    let (names, values) = expression_maps(&rendered);
    client
        .delete_item()
        .table_name(delete.table)
        .set_key(Some(to_sdk_item(&delete.key)))
        .set_condition_expression(rendered.condition)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .return_values(return_value(delete.return_values))
        .set_return_values_on_condition_check_failure(return_on_failure(delete.return_old_on_condition_failure))
}

fn prepare_query(client: &Client, query: Query) -> QueryFluentBuilder {
    let key_condition = query.key_condition();
    let rendered = RenderedExpressions::new(None, None, Some(&key_condition), query.filter.as_ref());
    let (names, values) = expression_maps(&rendered);
    client
        .query()
        .table_name(query.table)
        .set_key_condition_expression(rendered.key_condition)
        .set_filter_expression(rendered.filter)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .consistent_read(query.consistent_read)
        .set_limit(query.limit.map(|limit| i32::try_from(limit).unwrap_or(i32::MAX)))
        .set_exclusive_start_key(query.exclusive_start_key.as_ref().map(to_sdk_item))
}

fn prepare_transaction(client: &Client, transaction: TransactWrite) -> Result<TransactWriteItemsFluentBuilder> {
    let items = transaction.items.into_iter().map(transact_item).collect::<Result<Vec<_>>>()?;
    Ok(client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(transaction.client_request_token))
}

/// One action of a transaction. Actions cannot return values in a transaction, so asking for
/// them is refused rather than silently ignored.
fn transact_item(item: TransactItem) -> Result<sdk::TransactWriteItem> {
    let no_return_values = |values: ReturnValues| match values {
        ReturnValues::None => Ok(()),
        other => Err(Error::config(format!("TransactWriteItems actions cannot return values (asked for {other:?})"))),
    };
    let builder = sdk::TransactWriteItem::builder();
    let item = match item {
        TransactItem::ConditionCheck { table, key, condition } => {
            let rendered = RenderedExpressions::new(Some(&condition), None, None, None);
            let (names, values) = expression_maps(&rendered);
            let check = sdk::ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(to_sdk_item(&key)))
                .set_condition_expression(rendered.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(build_error)?;
            builder.condition_check(check)
        }
        TransactItem::Put(put) => {
            no_return_values(put.return_values)?;
            let rendered = RenderedExpressions::new(put.condition.as_ref(), None, None, None);
            let (names, values) = expression_maps(&rendered);
            let put = sdk::Put::builder()
                .table_name(put.table)
                .set_item(Some(to_sdk_item(&put.item)))
                .set_condition_expression(rendered.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(return_on_failure(put.return_old_on_condition_failure))
                .build()
                .map_err(build_error)?;
            builder.put(put)
        }
        TransactItem::Update(update) => {
            no_return_values(update.return_values)?;
            let rendered = RenderedExpressions::new(update.condition.as_ref(), Some(&update.update), None, None);
            let (names, values) = expression_maps(&rendered);
            let action = sdk::Update::builder()
                .table_name(update.table)
                .set_key(Some(to_sdk_item(&update.key)))
                .set_update_expression(rendered.update)
                .set_condition_expression(rendered.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(return_on_failure(update.return_old_on_condition_failure))
                .build()
                .map_err(build_error)?;
            builder.update(action)
        }
        TransactItem::Delete(delete) => {
            no_return_values(delete.return_values)?;
            let rendered = RenderedExpressions::new(delete.condition.as_ref(), None, None, None);
            let (names, values) = expression_maps(&rendered);
            let action = sdk::Delete::builder()
                .table_name(delete.table)
                .set_key(Some(to_sdk_item(&delete.key)))
                .set_condition_expression(rendered.condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .set_return_values_on_condition_check_failure(return_on_failure(delete.return_old_on_condition_failure))
                .build()
                .map_err(build_error)?;
            builder.delete(action)
        }
    };
    Ok(item.build())
}

/// A table with on-demand capacity and the given key.
fn prepare_create_table(client: &Client, create: CreateTable) -> Result<CreateTableFluentBuilder> {
    let keys = std::iter::once((&create.partition_key, sdk::KeyType::Hash))
        .chain(create.sort_key.as_ref().map(|sort| (sort, sdk::KeyType::Range)));
    let mut builder =
        client.create_table().table_name(create.table.clone()).billing_mode(sdk::BillingMode::PayPerRequest);
    for (attribute, role) in keys {
        let definition = sdk::AttributeDefinition::builder()
            .attribute_name(&attribute.name)
            .attribute_type(scalar_type(attribute.key_type))
            .build()
            .map_err(build_error)?;
        let element = sdk::KeySchemaElement::builder()
            .attribute_name(&attribute.name)
            .key_type(role)
            .build()
            .map_err(build_error)?;
        builder = builder.attribute_definitions(definition).key_schema(element);
    }
    Ok(builder)
}

impl Call {
    /// Sends the call once and converts its output.
    async fn send(self, context: &Context) -> std::result::Result<Response, Verdict> {
        let operation = context.operation;
        let item = |item: Option<SdkItem>| {
            item.map(from_sdk_item).transpose().map_err(|unknown| Verdict::Final(unknown.into_error(operation)))
        };
        let described =
            |description: Result<TableDescription>| description.map(Response::Table).map_err(Verdict::Final);
        match self {
            Call::GetItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok(Response::GetItem(item(output.item)?))
            }
            Call::PutItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok(Response::Written(item(output.attributes)?))
            }
            Call::UpdateItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok(Response::Written(item(output.attributes)?))
            }
            Call::DeleteItem(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                Ok(Response::Written(item(output.attributes)?))
            }
            Call::Query(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                let mut items = Vec::new();
                for found in output.items.unwrap_or_default() {
                    items.extend(item(Some(found))?);
                }
                Ok(Response::Query(QueryPage { items, last_evaluated_key: item(output.last_evaluated_key)? }))
            }
            Call::TransactWrite(call) => {
                call.send().await.map_err(|e| classify(context, e))?;
                Ok(Response::TransactWrite)
            }
            Call::CreateTable(call, table) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                described(table_description(operation, &table, output.table_description))
            }
            Call::DescribeTable(call, table) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                described(table_description(operation, &table, output.table))
            }
            Call::DeleteTable(call) => {
                call.send().await.map_err(|e| classify(context, e))?;
                Ok(Response::TableDeleted)
            }
            Call::UpdateTimeToLive(call, attribute, enabled) => {
                call.send().await.map_err(|e| classify(context, e))?;
                // DynamoDB echoes the specification; the change itself takes a while (up to an
                // hour on AWS), during which DescribeTimeToLive reports ENABLING or DISABLING.
                Ok(Response::TimeToLive(if enabled {
                    TimeToLive::Enabling { attribute }
                } else {
                    TimeToLive::Disabling
                }))
            }
            Call::DescribeTimeToLive(call) => {
                let output = call.send().await.map_err(|e| classify(context, e))?;
                time_to_live(operation, output.time_to_live_description)
                    .map(Response::TimeToLive)
                    .map_err(Verdict::Final)
            }
        }
    }
}

fn unexpected_response(operation: &'static str, message: String) -> Error {
    Error::Service { operation, code: "UnexpectedResponse".into(), message }
}

fn scalar_type(key_type: KeyType) -> sdk::ScalarAttributeType {
    match key_type {
        KeyType::S => sdk::ScalarAttributeType::S,
        KeyType::N => sdk::ScalarAttributeType::N,
        KeyType::B => sdk::ScalarAttributeType::B,
    }
}

fn table_description(
    operation: &'static str,
    table: &str,
    description: Option<sdk::TableDescription>,
) -> Result<TableDescription> {
    let description =
        description.ok_or_else(|| unexpected_response(operation, format!("no description of table {table:?}")))?;
    let key_types: HashMap<&str, &sdk::ScalarAttributeType> =
        description.attribute_definitions().iter().map(|d| (d.attribute_name(), d.attribute_type())).collect();
    let key_attribute = |element: &sdk::KeySchemaElement| {
        let name = element.attribute_name();
        let key_type = match key_types.get(name) {
            Some(sdk::ScalarAttributeType::S) => KeyType::S,
            Some(sdk::ScalarAttributeType::N) => KeyType::N,
            Some(sdk::ScalarAttributeType::B) => KeyType::B,
            other => {
                return Err(unexpected_response(operation, format!("key attribute {name:?} has type {other:?}")));
            }
        };
        Ok(KeyAttribute { name: name.to_owned(), key_type })
    };
    let mut partition_key = None;
    let mut sort_key = None;
    for element in description.key_schema() {
        match element.key_type() {
            sdk::KeyType::Hash => partition_key = Some(key_attribute(element)?),
            sdk::KeyType::Range => sort_key = Some(key_attribute(element)?),
            other => return Err(unexpected_response(operation, format!("unknown key type {other:?}"))),
        }
    }
    let partition_key =
        partition_key.ok_or_else(|| unexpected_response(operation, format!("table {table:?} has no partition key")))?;
    let status = match description.table_status {
        Some(sdk::TableStatus::Creating) => TableStatus::Creating,
        Some(sdk::TableStatus::Active) => TableStatus::Active,
        Some(sdk::TableStatus::Updating) => TableStatus::Updating,
        Some(sdk::TableStatus::Deleting) => TableStatus::Deleting,
        Some(other) => TableStatus::Other(other.as_str().to_owned()),
        None => TableStatus::Other("UNKNOWN".to_owned()),
    };
    Ok(TableDescription {
        table: description.table_name.unwrap_or_else(|| table.to_owned()),
        status,
        partition_key,
        sort_key,
    })
}

fn time_to_live(operation: &'static str, description: Option<sdk::TimeToLiveDescription>) -> Result<TimeToLive> {
    let description = description.unwrap_or_else(|| sdk::TimeToLiveDescription::builder().build());
    let attribute = || description.attribute_name().unwrap_or_default().to_owned();
    Ok(match description.time_to_live_status() {
        Some(sdk::TimeToLiveStatus::Enabled) => TimeToLive::Enabled { attribute: attribute() },
        Some(sdk::TimeToLiveStatus::Enabling) => TimeToLive::Enabling { attribute: attribute() },
        Some(sdk::TimeToLiveStatus::Disabling) => TimeToLive::Disabling,
        Some(sdk::TimeToLiveStatus::Disabled) | None => TimeToLive::Disabled,
        Some(other) => return Err(unexpected_response(operation, format!("unknown time to live status {other}"))),
    })
}

// ---------------------------------------------------------------------------------------------
// Attribute values
// ---------------------------------------------------------------------------------------------

/// An attribute value of a type this SDK version does not know (a type DynamoDB added later).
#[derive(Debug, PartialEq)]
struct UnknownAttributeType;

impl UnknownAttributeType {
    fn into_error(self, operation: &'static str) -> Error {
        Error::Service {
            operation,
            code: "UnknownAttributeType".into(),
            message: "DynamoDB returned an attribute value of a type this SDK version does not know".into(),
        }
    }
}

fn to_sdk_value(value: &AttributeValue) -> sdk::AttributeValue {
    match value {
        AttributeValue::S(s) => sdk::AttributeValue::S(s.clone()),
        AttributeValue::N(n) => sdk::AttributeValue::N(n.clone()),
        AttributeValue::B(b) => sdk::AttributeValue::B(Blob::new(b.clone())),
        AttributeValue::Bool(b) => sdk::AttributeValue::Bool(*b),
        AttributeValue::Null => sdk::AttributeValue::Null(true),
        AttributeValue::L(list) => sdk::AttributeValue::L(list.iter().map(to_sdk_value).collect()),
        AttributeValue::M(map) => sdk::AttributeValue::M(to_sdk_item(map)),
        AttributeValue::Ss(set) => sdk::AttributeValue::Ss(set.clone()),
        AttributeValue::Ns(set) => sdk::AttributeValue::Ns(set.clone()),
        AttributeValue::Bs(set) => sdk::AttributeValue::Bs(set.iter().cloned().map(Blob::new).collect()),
    }
}

fn from_sdk_value(value: sdk::AttributeValue) -> std::result::Result<AttributeValue, UnknownAttributeType> {
    Ok(match value {
        sdk::AttributeValue::S(s) => AttributeValue::S(s),
        sdk::AttributeValue::N(n) => AttributeValue::N(n),
        sdk::AttributeValue::B(b) => AttributeValue::B(b.into_inner()),
        sdk::AttributeValue::Bool(b) => AttributeValue::Bool(b),
        sdk::AttributeValue::Null(_) => AttributeValue::Null,
        sdk::AttributeValue::L(list) => {
            AttributeValue::L(list.into_iter().map(from_sdk_value).collect::<std::result::Result<_, _>>()?)
        }
        sdk::AttributeValue::M(map) => AttributeValue::M(from_sdk_item(map)?),
        sdk::AttributeValue::Ss(set) => AttributeValue::Ss(set),
        sdk::AttributeValue::Ns(set) => AttributeValue::Ns(set),
        sdk::AttributeValue::Bs(set) => AttributeValue::Bs(set.into_iter().map(Blob::into_inner).collect()),
        _ => return Err(UnknownAttributeType),
    })
}

fn to_sdk_item(item: &Item) -> SdkItem {
    item.iter().map(|(name, value)| (name.clone(), to_sdk_value(value))).collect()
}

fn from_sdk_item(item: SdkItem) -> std::result::Result<Item, UnknownAttributeType> {
    item.into_iter()
        .map(|(name, value)| Ok((name, from_sdk_value(value)?)))
        .collect::<std::result::Result<BTreeMap<_, _>, _>>()
}

#[cfg(test)]
mod tests {
    use std::io;

    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_smithy_runtime_api::client::dns::ResolveDnsError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::expr::{val, Condition, Name};

    fn key() -> Item {
        [("pk".to_owned(), AttributeValue::S("k".into()))].into()
    }

    fn put_request() -> Request {
        Request::PutItem(PutItem {
            table: "locks".into(),
            item: key(),
            condition: Some(Condition::NotExists(Name::aliased("#pk", "pk"))),
            return_values: ReturnValues::None,
            return_old_on_condition_failure: true,
        })
    }

    fn get_request() -> Request {
        Request::GetItem(GetItem { table: "locks".into(), key: key(), consistent_read: true })
    }

    fn transaction(token: Option<&str>) -> Request {
        let check = TransactItem::ConditionCheck {
            table: "locks".into(),
            key: key(),
            condition: Condition::Exists(Name::aliased("#pk", "pk")),
        };
        Request::TransactWrite(TransactWrite { items: vec![check], client_request_token: token.map(str::to_owned) })
    }

    fn write() -> Context {
        Context::of(&put_request())
    }

    fn read() -> Context {
        Context::of(&get_request())
    }

    fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    fn http(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    fn service<E>(error: E, status: u16) -> SdkError<E, HttpResponse> {
        SdkError::service_error(error, http(status))
    }

    fn put_failure(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        service(PutItemError::generic(meta(code, "details")), status)
    }

    fn get_failure(code: &str, status: u16) -> SdkError<GetItemError, HttpResponse> {
        service(GetItemError::generic(meta(code, "details")), status)
    }

    fn dispatch(error: ConnectorError) -> SdkError<PutItemError, HttpResponse> {
        SdkError::dispatch_failure(error)
    }

    /// Stands in for hyper-util's client error around a failed connector call.
    #[derive(Debug)]
    struct ConnectFailed(io::Error);

    impl std::fmt::Display for ConnectFailed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl StdError for ConnectFailed {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn throttling_is_retried_whatever_the_request() {
        let typed = PutItemError::ProvisionedThroughputExceededException(
            sdk::error::ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(meta("ProvisionedThroughputExceededException", "slow down"))
                .build(),
        );
        assert!(matches!(classify(&write(), service(typed, 400)), Verdict::Throttled(m) if m.contains("slow down")));
        for code in ["ThrottlingException", "RequestLimitExceeded"] {
            assert!(matches!(classify(&write(), put_failure(code, 400)), Verdict::Throttled(_)), "{code}");
            assert!(matches!(classify(&read(), get_failure(code, 400)), Verdict::Throttled(_)), "{code}");
        }
    }

    #[test]
    fn conflicts_are_retried_because_nothing_was_applied() {
        let verdict = classify(&write(), put_failure("TransactionConflictException", 400));
        assert!(
            matches!(&verdict, Verdict::Retry(Error::Service { code, .. }) if code == "TransactionConflictException")
        );
    }

    #[test]
    fn server_errors_are_ambiguous_for_writes_and_retried_for_reads() {
        let internal = || {
            sdk::error::InternalServerError::builder().message("oops").meta(meta("InternalServerError", "oops")).build()
        };
        let verdict = classify(&write(), service(PutItemError::InternalServerError(internal()), 500));
        assert!(matches!(&verdict, Verdict::Final(Error::Ambiguous { operation: "PutItem", .. })), "{verdict:?}");
        let verdict = classify(&read(), service(GetItemError::InternalServerError(internal()), 500));
        assert!(matches!(&verdict, Verdict::MaybeApplied(Error::Service { .. })), "{verdict:?}");

        // Unmodelled 5xx answers, with or without an error code.
        for (code, status) in [("ServiceUnavailable", 503), ("", 502)] {
            let verdict = classify(&write(), put_failure(code, status));
            assert!(matches!(&verdict, Verdict::Final(Error::Ambiguous { .. })), "{status}: {verdict:?}");
        }
        let verdict = classify(&write(), service(PutItemError::generic(ErrorMetadata::builder().build()), 504));
        assert!(matches!(&verdict, Verdict::Final(Error::Ambiguous { .. })), "{verdict:?}");
    }

    #[test]
    fn transactions_with_a_token_are_safe_to_repeat() {
        let failure = || service(TransactWriteItemsError::generic(meta("InternalServerError", "oops")), 500);
        let verdict = classify(&Context::of(&transaction(None)), failure());
        assert!(matches!(&verdict, Verdict::Final(Error::Ambiguous { .. })), "{verdict:?}");
        let verdict = classify(&Context::of(&transaction(Some("token"))), failure());
        assert!(matches!(&verdict, Verdict::MaybeApplied(_)), "{verdict:?}");
    }

    #[test]
    fn a_failed_condition_carries_the_current_item() {
        let failed = sdk::error::ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .item("pk", sdk::AttributeValue::S("k".into()))
            .item("owner", sdk::AttributeValue::S("someone".into()))
            .meta(meta("ConditionalCheckFailedException", "The conditional request failed"))
            .build();
        match classify(&write(), service(PutItemError::ConditionalCheckFailedException(failed), 400)) {
            Verdict::Final(Error::ConditionalCheckFailed { item: Some(item) }) => {
                assert_eq!(item["owner"], AttributeValue::S("someone".into()));
                assert_eq!(item.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let failed = sdk::error::ConditionalCheckFailedException::builder()
            .meta(meta("ConditionalCheckFailedException", "The conditional request failed"))
            .build();
        let verdict = classify(&write(), service(PutItemError::ConditionalCheckFailedException(failed), 400));
        assert!(matches!(&verdict, Verdict::Final(Error::ConditionalCheckFailed { item: None })), "{verdict:?}");
    }

    fn canceled(reasons: &[Option<&str>]) -> SdkError<TransactWriteItemsError, HttpResponse> {
        let reasons = reasons
            .iter()
            .map(|code| sdk::CancellationReason::builder().set_code(code.map(str::to_owned)).build())
            .collect();
        let error = sdk::error::TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .meta(meta("TransactionCanceledException", "Transaction cancelled"))
            .build();
        service(TransactWriteItemsError::TransactionCanceledException(error), 400)
    }

    #[test]
    fn cancelled_transactions_report_one_reason_per_action() {
        let context = Context::of(&transaction(None));
        match classify(&context, canceled(&[Some("None"), Some("ConditionalCheckFailed"), None])) {
            Verdict::Final(Error::TransactionCanceled { reasons }) => {
                assert_eq!(reasons, ["None", "ConditionalCheckFailed", "None"])
            }
            other => panic!("{other:?}"),
        }
        // Refused rather than evaluated: repeat.
        let verdict = classify(&context, canceled(&[Some("TransactionConflict"), Some("None")]));
        assert!(matches!(&verdict, Verdict::Retry(Error::TransactionCanceled { .. })), "{verdict:?}");
        let verdict = classify(&context, canceled(&[Some("ThrottlingError"), Some("TransactionConflict")]));
        assert!(matches!(&verdict, Verdict::Throttled(_)), "{verdict:?}");
        // A failed condition is final even when another action conflicted.
        let verdict = classify(&context, canceled(&[Some("TransactionConflict"), Some("ConditionalCheckFailed")]));
        assert!(matches!(&verdict, Verdict::Final(Error::TransactionCanceled { .. })), "{verdict:?}");
    }

    #[test]
    fn service_errors_map_to_the_crate_errors() {
        let verdict = classify(&write(), put_failure("ResourceNotFoundException", 400));
        assert!(matches!(&verdict, Verdict::Final(Error::TableNotFound { table }) if table == "locks"));
        let typed = PutItemError::ResourceNotFoundException(
            sdk::error::ResourceNotFoundException::builder().meta(meta("ResourceNotFoundException", "x")).build(),
        );
        assert!(matches!(classify(&write(), service(typed, 400)), Verdict::Final(Error::TableNotFound { .. })));

        let verdict = classify(&write(), put_failure("ValidationException", 400));
        assert!(
            matches!(&verdict, Verdict::Final(Error::Validation { operation: "PutItem", message }) if message == "details")
        );
        for code in ["UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"] {
            let verdict = classify(&write(), put_failure(code, 400));
            assert!(matches!(&verdict, Verdict::Final(Error::Credentials(m)) if m.contains(code)), "{code}");
        }
        let verdict = classify(&write(), put_failure("AccessDeniedException", 400));
        assert!(matches!(&verdict, Verdict::Final(Error::Service { code, .. }) if code == "AccessDeniedException"));
        let verdict = classify(&write(), service(PutItemError::generic(ErrorMetadata::builder().build()), 403));
        assert!(matches!(&verdict, Verdict::Final(Error::Service { code, .. }) if code == "HTTP 403"), "{verdict:?}");
    }

    #[test]
    fn failures_to_connect_are_retried_even_for_writes() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        for failure in [
            ConnectorError::io(Box::new(ConnectFailed(refused()))),
            ConnectorError::io(Box::new(refused())),
            // TLS handshake failures and connect timeouts arrive inside hyper-util's connect error.
            ConnectorError::io(Box::new(ConnectFailed(io::Error::new(io::ErrorKind::InvalidData, "bad certificate")))),
            ConnectorError::timeout(Box::new(ConnectFailed(io::Error::from(io::ErrorKind::TimedOut)))),
            ConnectorError::io(Box::new(ResolveDnsError::new("no such host"))),
        ] {
            let verdict = classify(&write(), dispatch(failure));
            assert!(matches!(&verdict, Verdict::Retry(Error::Network { operation: "PutItem", .. })), "{verdict:?}");
        }
        let verdict = classify(&write(), dispatch(ConnectorError::io(Box::new(ConnectFailed(refused())))));
        let Verdict::Retry(error) = verdict else { unreachable!() };
        assert!(error.to_string().contains("client error (Connect): connection refused"), "{error}");
    }

    #[test]
    fn failures_after_sending_are_ambiguous_for_writes_and_retried_for_reads() {
        let reset = || ConnectorError::io(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        let failures = [
            dispatch(reset()),
            dispatch(ConnectorError::timeout("read timed out".into())),
            dispatch(ConnectorError::other("connection closed before message completed".into(), None)),
            SdkError::timeout_error("operation timed out"),
            SdkError::response_error("truncated body", http(200)),
        ];
        for failure in failures {
            let verdict = classify(&write(), failure);
            assert!(matches!(&verdict, Verdict::Final(Error::Ambiguous { operation: "PutItem", .. })), "{verdict:?}");
        }
        let verdict = classify(&read(), SdkError::<GetItemError, HttpResponse>::timeout_error("operation timed out"));
        assert!(matches!(&verdict, Verdict::MaybeApplied(Error::Network { operation: "GetItem", .. })), "{verdict:?}");
    }

    #[test]
    fn requests_that_could_not_be_built_are_configuration_errors() {
        let verdict =
            classify(&write(), SdkError::<PutItemError, HttpResponse>::construction_failure("missing table name"));
        assert!(matches!(&verdict, Verdict::Final(Error::Config(_))), "{verdict:?}");
        let verdict = classify(&write(), dispatch(ConnectorError::user("invalid header".into())));
        assert!(matches!(&verdict, Verdict::Final(Error::Config(_))), "{verdict:?}");
    }

    #[tokio::test]
    async fn missing_credentials_are_reported_as_such() {
        // A profile that no configuration file defines.
        let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name("dynalease-test-profile-that-does-not-exist")
            .build();
        let sdk_config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            // Never contacted: credentials are resolved before connecting.
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(provider)
            .build();
        let transport = NativeTransport::from_client(Client::from_conf(sdk_config), NativeConfig::default()).unwrap();
        let result = transport.execute(put_request()).await;
        assert!(matches!(result, Err(Error::Credentials(_))), "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_gives_up_after_max_retries() {
        // A transport whose every attempt is throttled: counted through the retry loop alone.
        let config = NativeConfig { max_retries: 2, ..NativeConfig::default() };
        let transport = answering(400, "ThrottlingException", config);
        match transport.execute(put_request()).await {
            Err(Error::Throttled { operation: "PutItem", attempts: 3, message }) => {
                assert!(message.contains("ThrottlingException"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deduplicated_write_that_never_got_an_answer_has_an_unknown_outcome() {
        // Every attempt may have been applied: running out of them proves nothing was.
        let config = NativeConfig { max_retries: 2, ..NativeConfig::default() };
        let result = answering(500, "InternalServerError", config).execute(transaction(Some("token"))).await;
        assert!(matches!(&result, Err(Error::Ambiguous { operation: "TransactWriteItems", .. })), "{result:?}");
        assert_eq!(result.unwrap_err().kind(), crate::ErrorKind::OutcomeUnknown);
        // A read has nothing to be unsure of.
        let config = NativeConfig { max_retries: 2, ..NativeConfig::default() };
        let result = answering(500, "InternalServerError", config).execute(get_request()).await;
        assert!(matches!(&result, Err(Error::Service { operation: "GetItem", .. })), "{result:?}");
    }

    #[test]
    fn too_many_retries_are_refused() {
        let message = NativeConfig { max_retries: 1000, ..NativeConfig::default() }.validate().unwrap_err().to_string();
        assert!(message.contains("max_retries is 1000; at most 100"), "{message}");
    }

    /// A transport whose HTTP client answers every request with DynamoDB error `code`.
    fn answering(status: u16, code: &'static str, config: NativeConfig) -> NativeTransport {
        use aws_smithy_runtime_api::client::http::{
            http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
        };
        #[derive(Debug)]
        struct Failing(u16, &'static str);
        impl HttpConnector for Failing {
            fn call(&self, _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest) -> HttpConnectorFuture {
                let body = format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{}","message":"injected"}}"#, self.1);
                let mut response = HttpResponse::new(StatusCode::try_from(self.0).unwrap(), SdkBody::from(body));
                response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
                HttpConnectorFuture::ready(Ok(response))
            }
        }
        let failing = Failing(status, code);
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                .http_client(http_client_fn(move |_, _| SharedHttpConnector::new(Failing(failing.0, failing.1))))
                .build(),
        );
        NativeTransport::from_client(client, config).unwrap()
    }

    #[test]
    fn backoff_is_jittered_below_a_doubling_cap() {
        let config = NativeConfig::default();
        for failures in 1..=40 {
            let cap = Duration::from_millis(25 * (1u64 << (failures - 1).min(20))).min(Duration::from_secs(2));
            for _ in 0..20 {
                assert!(backoff_delay(&config, failures) <= cap, "{failures}");
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff_delay(&config, 5)).collect();
        assert!(spread.len() > 1, "no jitter");
        let zero = NativeConfig { base_backoff: Duration::ZERO, ..config };
        assert_eq!(backoff_delay(&zero, 3), Duration::ZERO);
    }

    #[test]
    fn malformed_endpoints_and_regions_fail_before_connecting() {
        let with = |endpoint: &str, region: &str| NativeConfig {
            endpoint_url: Some(endpoint.into()),
            region: Some(region.into()),
            ..NativeConfig::default()
        };
        with("http://localhost:8000", "us-east-1").validate().unwrap();
        with("https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1").validate().unwrap();
        for endpoint in ["localhost:8000", "not a url", "ftp://host", "http://", ""] {
            let message = with(endpoint, "us-east-1").validate().unwrap_err().to_string();
            assert!(message.contains("is not an http:// or https:// URL"), "{endpoint}: {message}");
        }
        for region in ["", "us east 1", "us-east-1/"] {
            let message = with("http://localhost:8000", region).validate().unwrap_err().to_string();
            assert!(message.contains("is not a region name"), "{region}: {message}");
        }
    }

    #[test]
    fn loopback_endpoints_are_recognised() {
        for local in [
            "http://localhost:8000",
            "http://LOCALHOST",
            "http://127.0.0.1:41234",
            "http://127.1.2.3:8000/",
            "http://[::1]:8000",
            "https://user@localhost:8000/path",
        ] {
            assert!(is_loopback_endpoint(local), "{local}");
        }
        for remote in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://localhost.example.com",
            "http://[2001:db8::1]:8000",
            "http://192.168.1.2",
        ] {
            assert!(!is_loopback_endpoint(remote), "{remote}");
        }
    }

    #[test]
    fn attribute_values_convert_losslessly() {
        let every_type: Item = [
            ("s", AttributeValue::S("text".into())),
            ("n", AttributeValue::N("-1.5E+10".into())),
            ("b", AttributeValue::B(vec![0, 255])),
            ("bool", AttributeValue::Bool(false)),
            ("null", AttributeValue::Null),
            ("l", AttributeValue::L(vec![AttributeValue::Null, AttributeValue::int(7)])),
            ("m", AttributeValue::M([("inner".to_owned(), AttributeValue::Bool(true))].into())),
            ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("ns", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
            ("bs", AttributeValue::Bs(vec![vec![1], vec![]])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let sdk_item = to_sdk_item(&every_type);
        assert_eq!(sdk_item["null"], sdk::AttributeValue::Null(true));
        assert_eq!(sdk_item["b"], sdk::AttributeValue::B(Blob::new(vec![0, 255])));
        assert_eq!(from_sdk_item(sdk_item).unwrap(), every_type);

        assert_eq!(from_sdk_value(sdk::AttributeValue::Null(false)), Ok(AttributeValue::Null));
    }

    #[test]
    fn expression_maps_are_sent_only_when_used() {
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .build(),
        );
        let Call::PutItem(call) = prepare(&client, put_request()).unwrap() else { unreachable!() };
        let input = call.as_input();
        assert_eq!(input.get_condition_expression().as_deref(), Some("attribute_not_exists(#pk)"));
        assert_eq!(input.get_expression_attribute_names().as_ref().unwrap()["#pk"], "pk");
        assert_eq!(input.get_expression_attribute_values(), &None);
        assert_eq!(
            input.get_return_values_on_condition_check_failure(),
            &Some(sdk::ReturnValuesOnConditionCheckFailure::AllOld)
        );

        let unconditional = Request::PutItem(PutItem {
            table: "locks".into(),
            item: key(),
            condition: None,
            return_values: ReturnValues::AllOld,
            return_old_on_condition_failure: false,
        });
        let Call::PutItem(call) = prepare(&client, unconditional).unwrap() else { unreachable!() };
        let input = call.as_input();
        assert_eq!(input.get_condition_expression(), &None);
        assert_eq!(input.get_expression_attribute_names(), &None);
        assert_eq!(input.get_return_values(), &Some(sdk::ReturnValue::AllOld));

        let query = Request::Query(Query {
            table: "locks".into(),
            partition: (Name::aliased("#pk", "pk"), val(":pk", AttributeValue::S("p".into()))),
            sort_key_prefix: Some((Name::aliased("#sk", "sk"), val(":prefix", AttributeValue::S("a".into())))),
            filter: None,
            consistent_read: true,
            limit: Some(10),
            exclusive_start_key: None,
        });
        let Call::Query(call) = prepare(&client, query).unwrap() else { unreachable!() };
        let input = call.as_input();
        assert_eq!(input.get_key_condition_expression().as_deref(), Some("#pk = :pk and begins_with(#sk, :prefix)"));
        assert_eq!(input.get_expression_attribute_values().as_ref().unwrap().len(), 2);
        assert_eq!(input.get_limit(), &Some(10));
    }

    #[test]
    fn transaction_actions_cannot_return_values() {
        let put = PutItem {
            table: "locks".into(),
            item: key(),
            condition: None,
            return_values: ReturnValues::AllOld,
            return_old_on_condition_failure: false,
        };
        assert!(matches!(transact_item(TransactItem::Put(put)), Err(Error::Config(_))));
    }

    #[test]
    fn table_descriptions_take_key_types_from_attribute_definitions() {
        let description = sdk::TableDescription::builder()
            .table_name("locks")
            .table_status(sdk::TableStatus::Active)
            .key_schema(
                sdk::KeySchemaElement::builder().attribute_name("id").key_type(sdk::KeyType::Hash).build().unwrap(),
            )
            .key_schema(
                sdk::KeySchemaElement::builder().attribute_name("at").key_type(sdk::KeyType::Range).build().unwrap(),
            )
            .attribute_definitions(
                sdk::AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(sdk::ScalarAttributeType::B)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                sdk::AttributeDefinition::builder()
                    .attribute_name("at")
                    .attribute_type(sdk::ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .build();
        let described = table_description("DescribeTable", "locks", Some(description)).unwrap();
        assert_eq!(described.status, TableStatus::Active);
        assert_eq!(described.partition_key, KeyAttribute { name: "id".into(), key_type: KeyType::B });
        assert_eq!(described.sort_key, Some(KeyAttribute { name: "at".into(), key_type: KeyType::N }));

        let archived = sdk::TableDescription::builder()
            .table_status(sdk::TableStatus::Archived)
            .key_schema(
                sdk::KeySchemaElement::builder().attribute_name("id").key_type(sdk::KeyType::Hash).build().unwrap(),
            )
            .build();
        // The key's type is missing from the definitions.
        assert!(table_description("DescribeTable", "locks", Some(archived)).is_err());
        assert!(table_description("DescribeTable", "locks", None).is_err());
    }

    #[test]
    fn time_to_live_statuses_map_one_to_one() {
        let ttl = |status: sdk::TimeToLiveStatus| {
            let description =
                sdk::TimeToLiveDescription::builder().time_to_live_status(status).attribute_name("expires").build();
            time_to_live("DescribeTimeToLive", Some(description)).unwrap()
        };
        assert_eq!(ttl(sdk::TimeToLiveStatus::Enabled), TimeToLive::Enabled { attribute: "expires".into() });
        assert_eq!(ttl(sdk::TimeToLiveStatus::Enabling), TimeToLive::Enabling { attribute: "expires".into() });
        assert_eq!(ttl(sdk::TimeToLiveStatus::Disabled), TimeToLive::Disabled);
        assert_eq!(ttl(sdk::TimeToLiveStatus::Disabling), TimeToLive::Disabling);
        assert_eq!(time_to_live("DescribeTimeToLive", None).unwrap(), TimeToLive::Disabled);
    }
}
