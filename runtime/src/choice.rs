//! Choosing between two ways of doing the same work by timing both on the
//! input itself.
//!
//! Finding a record's candidate rules from its raw bytes (the `eventName`
//! table and the literal prefilter) pays only when it lets most records go
//! unparsed. Whether it does depends on the rules and the data: a literal
//! such as `true` or `root` occurs in nearly every CloudTrail record, and an
//! overlapping search for it cost more than the parse it was meant to spare
//! (1.22 s against 0.55 s for 200k records). Both ways give the same
//! verdicts, so the choice changes only the speed, and it is made by
//! measuring: a short trial of each way, then a long run of the cheaper one,
//! then another trial, since the next file may differ.

use std::time::Duration;

/// Calls timed for each way in a trial.
const TRIAL: u32 = 64;
/// Calls made the cheaper way between trials.
const RUN: u32 = 8192;

/// One of the two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    First,
    Second,
}

/// Picks a way for each call, alternating trials and runs.
#[derive(Debug, Clone)]
pub(crate) struct Chooser {
    way: Way,
    /// Calls left in the current trial or run.
    left: u32,
    trial: bool,
    /// Time spent by each way in the current trial.
    spent: [Duration; 2],
}

impl Default for Chooser {
    fn default() -> Self {
        Chooser {
            way: Way::First,
            left: TRIAL,
            trial: true,
            spent: [Duration::ZERO; 2],
        }
    }
}

impl Chooser {
    /// The way for the next call, and whether to time it (report the time
    /// with [`Chooser::spent`]).
    pub(crate) fn next(&mut self) -> (Way, bool) {
        if self.left == 0 {
            self.advance();
        }
        self.left -= 1;
        (self.way, self.trial)
    }

    /// The time a timed call took.
    pub(crate) fn spent(&mut self, took: Duration) {
        let slot = &mut self.spent[self.way as usize];
        *slot = slot.saturating_add(took);
    }

    fn advance(&mut self) {
        (self.way, self.trial, self.left) = match (self.trial, self.way) {
            (true, Way::First) => (Way::Second, true, TRIAL),
            (true, Way::Second) => {
                // A tie keeps the first way.
                let cheaper = if self.spent[1] < self.spent[0] {
                    Way::Second
                } else {
                    Way::First
                };
                (cheaper, false, RUN)
            }
            (false, _) => {
                self.spent = [Duration::ZERO; 2];
                (Way::First, true, TRIAL)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `calls` calls where the first way costs `first` and the second
    /// `second` each; returns how many went each way.
    fn run(chooser: &mut Chooser, calls: u32, first: u64, second: u64) -> [u32; 2] {
        let mut count = [0; 2];
        for _ in 0..calls {
            let (way, timed) = chooser.next();
            count[way as usize] += 1;
            if timed {
                let cost = if way == Way::First { first } else { second };
                chooser.spent(Duration::from_nanos(cost));
            }
        }
        count
    }

    #[test]
    fn after_one_trial_of_each_way_the_cheaper_one_runs() {
        let mut c = Chooser::default();
        assert_eq!(run(&mut c, TRIAL, 100, 50), [TRIAL, 0]);
        assert_eq!(run(&mut c, TRIAL, 100, 50), [0, TRIAL]);
        assert_eq!(run(&mut c, RUN, 100, 50), [0, RUN]);
        let mut c = Chooser::default();
        assert_eq!(run(&mut c, 2 * TRIAL + RUN, 50, 100), [TRIAL + RUN, TRIAL]);
    }

    #[test]
    fn a_change_in_the_input_is_followed_after_the_next_trial() {
        let mut c = Chooser::default();
        run(&mut c, 2 * TRIAL + RUN, 100, 50);
        // The costs turn: the next trial finds it, and the run follows.
        assert_eq!(run(&mut c, 2 * TRIAL, 50, 100), [TRIAL, TRIAL]);
        assert_eq!(run(&mut c, RUN, 50, 100), [RUN, 0]);
    }

    #[test]
    fn equal_costs_keep_the_first_way() {
        let mut c = Chooser::default();
        assert_eq!(run(&mut c, 2 * TRIAL + RUN, 70, 70), [TRIAL + RUN, TRIAL]);
    }
}
