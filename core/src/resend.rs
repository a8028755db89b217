//! The one rule for writes whose outcome is unknown: resend them (every engine write can tell
//! its own earlier landing from its failed condition), a bounded number of times, and once any
//! send may have landed, never report a later failure as if nothing had happened.

use crate::error::Error;

/// Sends of one write whose outcome stays unknown before giving up.
pub(crate) const AMBIGUOUS_RESENDS: u32 = 3;

/// The sends of one write.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sends {
    operation: &'static str,
    resends: u32,
    /// A send got no answer: it may have landed, and may still land.
    uncertain: bool,
}

impl Sends {
    pub fn new(operation: &'static str) -> Sends {
        Sends { operation, resends: 0, uncertain: false }
    }

    /// At least one send was resent after an unknown outcome.
    pub fn resent(&self) -> bool {
        self.resends > 0
    }

    /// A send got no answer: it may have landed, or may still land.
    pub fn uncertain(&self) -> bool {
        self.uncertain
    }

    /// A read that was to resolve this write failed: after an unknown send that leaves the
    /// write's outcome unknown, not failed.
    pub fn unresolved(&self, read_error: Error) -> Error {
        if self.uncertain {
            self.unknown(&format!("the read to resolve it failed: {read_error}"))
        } else {
            read_error
        }
    }

    /// The outcome is unknown after all: the caller found that a send still on its way could
    /// yet be applied.
    pub fn unknown(&self, why: &str) -> Error {
        Error::Ambiguous { operation: self.operation, message: format!("an earlier send got no answer and {why}") }
    }

    /// A send got no definite answer: it may have landed, or land yet.
    pub fn unanswered(&mut self) {
        self.uncertain = true;
    }

    /// One more send after an unknown outcome: `false` once the bound is spent.
    pub fn may_resend(&mut self) -> bool {
        if self.resends < AMBIGUOUS_RESENDS {
            self.resends += 1;
            return true;
        }
        false
    }

    /// The write is asked for again (a new call after an error): it gets resends of its own,
    /// while what its earlier sends may have done is still remembered.
    pub fn new_call(&mut self) {
        self.resends = 0;
    }

    /// After a send failed with `error` (other than a failed condition, which each engine
    /// resolves itself): `Ok` to send again, or the error to report. A definite failure (a
    /// throttled or refused resend) after an unknown outcome is an unknown outcome too: the
    /// earlier send may have landed.
    pub fn failed(&mut self, error: Error) -> Result<(), Error> {
        if error.is_ambiguous() {
            self.unanswered();
            return if self.may_resend() { Ok(()) } else { Err(error) };
        }
        if self.uncertain {
            return Err(Error::Ambiguous {
                operation: self.operation,
                message: format!("an earlier send got no answer and may have landed, then a resend failed: {error}"),
            });
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Error {
        Error::Ambiguous { operation: "PutItem", message: "timeout".into() }
    }

    fn refused() -> Error {
        Error::Network { operation: "PutItem", message: "refused".into() }
    }

    #[test]
    fn unknown_outcomes_are_resent_a_bounded_number_of_times() {
        let mut sends = Sends::new("PutItem");
        for _ in 0..AMBIGUOUS_RESENDS {
            assert!(sends.failed(lost()).is_ok());
        }
        assert!(sends.failed(lost()).unwrap_err().is_ambiguous());
        assert!(sends.resent());
    }

    #[test]
    fn a_definite_failure_stays_definite_only_if_no_send_may_have_landed() {
        assert!(matches!(Sends::new("PutItem").failed(refused()), Err(Error::Network { .. })));
        let mut sends = Sends::new("PutItem");
        sends.failed(lost()).unwrap();
        let error = sends.failed(refused()).unwrap_err();
        assert!(error.is_ambiguous(), "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
    }
}
