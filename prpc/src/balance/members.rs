//! What every balancer derives from a set of endpoints: the weight each may take load with,
//! and a uniform draw among those that may, passing over the skipped.

use crate::discovery::Endpoint;

use super::rng::Rng;

/// How many uniform draws a pick makes before it counts the endpoints not skipped and draws
/// among those: with a quarter of the set skipped, 4 draws all land on skipped endpoints once
/// in 256 picks.
const DRAWS: usize = 4;

/// The endpoints of one update as the balancers weigh them.
#[derive(Debug, Default)]
pub(crate) struct Members {
    /// Each endpoint's weight, 0 for those that take no load. When every endpoint of the
    /// set has weight 0, each counts as weight 1.
    pub(crate) weights: Vec<u32>,
    /// The indices of the endpoints whose weight is not 0, ascending.
    pub(crate) eligible: Vec<usize>,
}

impl Members {
    pub(crate) fn new(endpoints: &[Endpoint]) -> Self {
        let all_zero = endpoints.iter().all(|endpoint| endpoint.weight == 0);
        let weights: Vec<u32> = endpoints
            .iter()
            .map(|endpoint| if all_zero { 1 } else { endpoint.weight })
            .collect();
        let eligible = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
        Members { weights, eligible }
    }
}

/// An index drawn uniformly from `eligible` among those `skip` does not pass over; `None` if
/// it passes over all of them.
#[inline]
pub(crate) fn uniform(
    rng: &Rng,
    eligible: &[usize],
    skip: impl Fn(usize) -> bool,
) -> Option<usize> {
    if eligible.is_empty() {
        return None;
    }
    for _ in 0..DRAWS {
        let candidate = eligible[rng.index(eligible.len())];
        if !skip(candidate) {
            return Some(candidate);
        }
    }
    // Most of the set is skipped: count what is left and draw among that.
    let left = eligible.iter().filter(|&&i| !skip(i)).count();
    if left == 0 {
        return None;
    }
    let nth = rng.index(left);
    eligible.iter().copied().filter(|&i| !skip(i)).nth(nth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| {
                Endpoint::new(format!("10.0.0.{i}:7000"))
                    .unwrap()
                    .weight(weight)
            })
            .collect()
    }

    #[test]
    fn zero_weights_take_no_load_unless_all_are_zero() {
        let members = Members::new(&endpoints(&[3, 0, 1]));
        assert_eq!(
            (members.weights, members.eligible),
            (vec![3, 0, 1], vec![0, 2])
        );
        let members = Members::new(&endpoints(&[0, 0]));
        assert_eq!(
            (members.weights, members.eligible),
            (vec![1, 1], vec![0, 1])
        );
        let members = Members::new(&[]);
        assert!(members.eligible.is_empty());
    }

    #[test]
    fn uniform_draws_pass_over_the_skipped() {
        let rng = Rng::new(Some(1));
        let eligible: Vec<usize> = (0..10).collect();
        for _ in 0..100 {
            assert_eq!(uniform(&rng, &eligible, |i| i != 7), Some(7));
        }
        assert_eq!(uniform(&rng, &eligible, |_| true), None);
        assert_eq!(uniform(&rng, &[], |_| false), None);
    }
}
