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
//!
//! This module holds the configuration and the retry loop; the submodules classify failures,
//! convert requests to SDK calls and back, and convert attribute values.

mod calls;
mod classify;
#[cfg(test)]
mod test_support;
mod values;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials};
use aws_sdk_dynamodb::Client;
use tracing::{debug, warn};

use crate::error::{duration_text, Error, Result};
use crate::request::{Request, Response};
use crate::stats::Stats;
use crate::transport::Transport;

use calls::{prepare, Call, Units};
use classify::{Context, Verdict};

/// How [`NativeTransport`] reaches DynamoDB and how hard it retries.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeConfig {
    /// Overrides the region of the standard chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Sends requests here instead of the regional endpoint (DynamoDB Local, a proxy).
    pub endpoint_url: Option<String>,
    /// The shared-config profile whose credentials and region to use (default: the standard
    /// chain's, `AWS_PROFILE` included).
    pub profile: Option<String>,
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
            profile: None,
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
            return Err(Error::option("call_timeout", "must be longer than zero"));
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return Err(Error::option(
                "max_retries",
                format!(
                    "is {}; at most {MAX_RETRIES_LIMIT} is allowed (each retry can wait up to {:?}); use 0 to send each request once",
                    self.max_retries, self.max_backoff
                ),
            ));
        }
        if let Some(region) = &self.region {
            if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(Error::option(
                    "region",
                    format!("{region:?} is not a region name; use one such as \"us-east-1\", or omit it to use AWS_REGION or the profile's"),
                ));
            }
        }
        if let Some(endpoint) = &self.endpoint_url {
            let parsed = url::Url::parse(endpoint).ok().filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
            if parsed.is_none() {
                return Err(Error::option(
                    "endpoint_url",
                    format!("{endpoint:?} is not an http:// or https:// URL; write it in full, e.g. \"http://localhost:8000\" for DynamoDB Local"),
                ));
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
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
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

    /// The configuration the transport was built from.
    pub fn config(&self) -> &NativeConfig {
        &self.config
    }

    /// Sends prepared `call` until it succeeds, fails for good, or runs out of attempts, and
    /// counts into `stats` its sends, throttles and capacity.
    async fn send_with_retries(&self, call: Call, context: &Context, stats: Option<&Stats>) -> Result<Response> {
        let mut throttled = 0;
        let mut attempts = 0;
        let mut used = Units::default();
        let result = self.send_counting(call, context, &mut attempts, &mut throttled, &mut used).await;
        if let Some(stats) = stats {
            // DynamoDB charges a failed conditional write (a write unit for an item up to 1 KB)
            // but reports nothing for it.
            if matches!(result, Err(Error::ConditionalCheckFailed { .. })) {
                used.write += 1.0;
            }
            stats.request(attempts, throttled, used.read, used.write);
        }
        result
    }

    async fn send_counting(&self, call: Call, context: &Context, attempts: &mut u32, throttled: &mut u32, used: &mut Units) -> Result<Response> {
        let max_attempts = self.config.max_retries.saturating_add(1);
        let mut attempt = 1;
        // Whether an earlier attempt may have been applied: then running out of attempts is an
        // unknown outcome, whatever the last attempt's failure says.
        let mut maybe_applied = false;
        loop {
            *attempts = attempt;
            let verdict = match tokio::time::timeout(self.config.call_timeout, call.clone().send(context)).await {
                Ok(Ok((response, units))) => {
                    used.read += units.read;
                    used.write += units.write;
                    return Ok(response);
                }
                Ok(Err(verdict)) => verdict,
                // Dropping the attempt aborts it wherever it was, possibly after DynamoDB
                // received it.
                Err(_) => context.lost_in_transit(format!("no response within {}", duration_text(self.config.call_timeout))),
            };
            if matches!(verdict, Verdict::Throttled(_)) {
                *throttled += 1;
            }
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
        self.send_with_retries(call, &context, None).await
    }

    async fn execute_counted(&self, request: Request, stats: &Stats) -> Result<Response> {
        let context = Context::of(&request);
        debug!(operation = context.operation, table = %context.tables, "DynamoDB request");
        let call = prepare(&self.client, request)?;
        self.send_with_retries(call, &context, Some(stats)).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::native::test_support::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

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
}
