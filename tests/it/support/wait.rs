//! Waiting until something holds: the one poll loop of the tests, with a deadline, whose
//! failure names what was awaited and the last value observed.
//!
//! ```ignore
//! let sender = Wait::until("the profile to reach Twilio")
//!     .within(Duration::from_secs(20))
//!     .context(|| f.operator.log_tail(40))
//!     .poll(async || f.sim.sender(&sid).await, |s| s["profile"]["about"] == "new")
//!     .await;
//! ```
//!
//! `twilio-sim`'s tests include this file too (`#[path]`), so it needs nothing but std and tokio.

use std::fmt::{Debug, Display};
use std::time::{Duration, Instant};

/// The default deadline, as long as a test waits for the operator to get somewhere.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(30);
/// The default pause between two looks: short against the simulator's 50 ms steps, long
/// enough not to load the shared API server.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(100);

/// What to wait for, for how long, how often to look, and what to add to a failure.
#[must_use = "a Wait does nothing until polled"]
pub struct Wait<'a> {
    what: String,
    within: Duration,
    every: Duration,
    context: Option<Box<dyn Fn() -> String + 'a>>,
}

impl<'a> Wait<'a> {
    /// A wait for `what` (said as the failure will say it: "the sender to be Ready"), of
    /// [`DEFAULT_WITHIN`], looking every [`DEFAULT_EVERY`].
    pub fn until(what: impl Into<String>) -> Wait<'a> {
        Wait {
            what: what.into(),
            within: DEFAULT_WITHIN,
            every: DEFAULT_EVERY,
            context: None,
        }
    }

    pub fn within(mut self, within: Duration) -> Self {
        self.within = within;
        self
    }

    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Text added to a failure, made only then (an operator's log tail, say).
    pub fn context(mut self, context: impl Fn() -> String + 'a) -> Self {
        self.context = Some(Box::new(context));
        self
    }

    /// Calls `observe` until `done` holds for what it returned, and returns that; panics at
    /// the deadline with the last value.
    pub async fn poll<T: Debug>(
        &self,
        mut observe: impl AsyncFnMut() -> T,
        done: impl Fn(&T) -> bool,
    ) -> T {
        let polled = self
            .try_poll_ok(async || {
                let value = observe().await;
                if done(&value) { Ok(value) } else { Err(value) }
            })
            .await;
        polled.unwrap_or_else(|last| self.fail(format!("{last:#?}")))
    }

    /// Calls `check` until it returns `Ok`, and returns that value; panics at the deadline with
    /// the last `Err` (what `check` saw instead).
    pub async fn poll_ok<T, E: Display>(&self, check: impl AsyncFnMut() -> Result<T, E>) -> T {
        match self.try_poll_ok(check).await {
            Ok(value) => value,
            Err(last) => self.fail(last),
        }
    }

    /// [`Wait::poll_ok`] that returns the last `Err` at the deadline instead of panicking, for
    /// callers that must clean up first (kill a process, say).
    pub async fn try_poll_ok<T, E>(
        &self,
        mut check: impl AsyncFnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        let until = Instant::now() + self.within;
        loop {
            match check().await {
                Ok(value) => return Ok(value),
                Err(last) if Instant::now() >= until => return Err(last),
                Err(_) => tokio::time::sleep(self.every).await,
            }
        }
    }

    /// [`Wait::try_poll_ok`] for code outside a runtime: sleeps the thread between looks.
    pub fn try_poll_ok_blocking<T, E>(
        &self,
        mut check: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        let until = Instant::now() + self.within;
        loop {
            match check() {
                Ok(value) => return Ok(value),
                Err(last) if Instant::now() >= until => return Err(last),
                Err(_) => std::thread::sleep(self.every),
            }
        }
    }

    /// The failure: what was awaited, for how long, what was seen last, and the context.
    pub fn fail(&self, last: impl Display) -> ! {
        let context = self
            .context
            .as_ref()
            .map(|context| format!("\n{}", context()))
            .unwrap_or_default();
        panic!(
            "waited {:?} for {}; last seen: {last}{context}",
            self.within, self.what
        )
    }
}
