//! Classification of failed attempts: whether a failure means the request was not applied
//! (repeat it), may have been applied (repeat only what is safe to repeat, else report an
//! unknown outcome), or is final; and the one mapping of DynamoDB's errors to the crate's.

use std::error::Error as StdError;
use std::future::Future;

use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials};
use aws_sdk_dynamodb::error::{ConnectorError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types as sdk;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::error::Error;
use crate::request::{Request, TransactItem};

use super::values::from_sdk_item;

/// What one failed attempt means for the retry loop.
#[derive(Debug)]
pub(super) enum Verdict {
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
pub(super) struct Context {
    pub(super) operation: &'static str,
    /// The table(s) the request names, for logs and [`Error::TableNotFound`].
    pub(super) tables: String,
    /// Sending the request twice has the effect of sending it once.
    safe_to_repeat: bool,
    /// The request changes data (an unanswered attempt leaves its outcome unknown).
    writes: bool,
}

impl Context {
    pub(super) fn of(request: &Request) -> Context {
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
    pub(super) fn lost_in_transit(&self, message: String) -> Verdict {
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
    pub(super) fn settle(&self, last: Error, maybe_applied: bool) -> Error {
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
        Request::BatchGet(r) => r.table.clone(),
        Request::PutItem(r) => r.table.clone(),
        Request::UpdateItem(r) => r.table.clone(),
        Request::DeleteItem(r) => r.table.clone(),
        Request::Query(r) => r.table.clone(),
        Request::Scan(r) => r.table.clone(),
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
pub(super) fn classify<E>(context: &Context, error: SdkError<E, HttpResponse>) -> Verdict
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
    use crate::transport::native::test_support::*;
    use crate::value::AttributeValue;

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
}
