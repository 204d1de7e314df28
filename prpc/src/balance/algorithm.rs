//! [`Algorithm`]: a balancer named in configuration.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    BoxBalancer, ConsistentHash, LeastActive, P2c, Random, RoundRobin, SmoothWeightedRoundRobin,
    WeightedRandom,
};

/// A balancing algorithm by name, for configuration: parsed with `FromStr` or serde from
/// its name, and built into a [`BoxBalancer`] with its defaults.
///
/// | name | balancer |
/// |---|---|
/// | `random` | [`Random`] |
/// | `weighted_random` | [`WeightedRandom`] |
/// | `round_robin` | [`RoundRobin`] |
/// | `smooth_weighted_round_robin` | [`SmoothWeightedRoundRobin`] |
/// | `consistent_hash` | [`ConsistentHash`] |
/// | `least_active` | [`LeastActive`] |
/// | `p2c` (the default) | [`P2c`] |
///
/// Names are lowercase `snake_case`, exactly as listed (serde's convention for enum
/// variants); anything else is an error naming the choices. The default is `p2c`, the
/// algorithm of Finagle, linkerd and tower: it adapts to slow and busy endpoints without
/// scanning the set. Parameters (virtual nodes, the p2c decay) are set in code, on the types.
///
/// ```
/// use prpc::balance::{Algorithm, Balancer, Pick};
/// use prpc::discovery::Endpoint;
///
/// let algorithm: Algorithm = "smooth_weighted_round_robin".parse()?;
/// assert_eq!(algorithm, Algorithm::SmoothWeightedRoundRobin);
/// assert_eq!(algorithm.to_string(), "smooth_weighted_round_robin");
/// assert!("fastest".parse::<Algorithm>().is_err());
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     balancer: Algorithm,
/// }
/// let config: Config = serde_json::from_str(r#"{ "balancer": "least_active" }"#)?;
/// let balancer = config.balancer.build();
/// balancer.update(&[Endpoint::new("10.0.0.7:7000")?]);
/// assert_eq!(balancer.pick(&Pick::new()), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// [`Random`].
    Random,
    /// [`WeightedRandom`].
    WeightedRandom,
    /// [`RoundRobin`].
    RoundRobin,
    /// [`SmoothWeightedRoundRobin`].
    SmoothWeightedRoundRobin,
    /// [`ConsistentHash`].
    ConsistentHash,
    /// [`LeastActive`].
    LeastActive,
    /// [`P2c`].
    #[default]
    P2c,
}

impl Algorithm {
    /// Every algorithm, in the order of the table above.
    pub const ALL: [Algorithm; 7] = [
        Algorithm::Random,
        Algorithm::WeightedRandom,
        Algorithm::RoundRobin,
        Algorithm::SmoothWeightedRoundRobin,
        Algorithm::ConsistentHash,
        Algorithm::LeastActive,
        Algorithm::P2c,
    ];

    /// Its name in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Random => "random",
            Algorithm::WeightedRandom => "weighted_random",
            Algorithm::RoundRobin => "round_robin",
            Algorithm::SmoothWeightedRoundRobin => "smooth_weighted_round_robin",
            Algorithm::ConsistentHash => "consistent_hash",
            Algorithm::LeastActive => "least_active",
            Algorithm::P2c => "p2c",
        }
    }

    /// A balancer of this algorithm with its defaults, empty until its first update.
    pub fn build(self) -> BoxBalancer {
        self.build_with(None)
    }

    /// The same, with its random draws (where it makes any) from one sequence from `seed`,
    /// for tests that want the same picks every run.
    pub fn build_seeded(self, seed: u64) -> BoxBalancer {
        self.build_with(Some(seed))
    }

    fn build_with(self, seed: Option<u64>) -> BoxBalancer {
        match (self, seed) {
            (Algorithm::Random, None) => Box::new(Random::new()),
            (Algorithm::Random, Some(seed)) => Box::new(Random::with_seed(seed)),
            (Algorithm::WeightedRandom, None) => Box::new(WeightedRandom::new()),
            (Algorithm::WeightedRandom, Some(seed)) => Box::new(WeightedRandom::with_seed(seed)),
            (Algorithm::RoundRobin, _) => Box::new(RoundRobin::new()),
            (Algorithm::SmoothWeightedRoundRobin, _) => Box::new(SmoothWeightedRoundRobin::new()),
            (Algorithm::ConsistentHash, None) => Box::new(ConsistentHash::new()),
            (Algorithm::ConsistentHash, Some(seed)) => Box::new(ConsistentHash::with_seed(seed)),
            (Algorithm::LeastActive, None) => Box::new(LeastActive::new()),
            (Algorithm::LeastActive, Some(seed)) => Box::new(LeastActive::with_seed(seed)),
            (Algorithm::P2c, None) => Box::new(P2c::new()),
            (Algorithm::P2c, Some(seed)) => Box::new(P2c::with_seed(seed)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`Algorithm`]'s.
///
/// ```
/// use prpc::balance::Algorithm;
///
/// let error = "fastest".parse::<Algorithm>().unwrap_err();
/// assert!(error.to_string().starts_with("unknown balancer \"fastest\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAlgorithmError {
    name: String,
}

impl fmt::Display for ParseAlgorithmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown balancer {:?}: expected random, weighted_random, round_robin, \
             smooth_weighted_round_robin, consistent_hash, least_active or p2c",
            self.name
        )
    }
}

impl std::error::Error for ParseAlgorithmError {}

impl FromStr for Algorithm {
    type Err = ParseAlgorithmError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
            .ok_or_else(|| ParseAlgorithmError { name: name.into() })
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Pick;
    use crate::balance::tests::endpoints;

    #[test]
    fn names_round_trip_and_every_balancer_is_safe_on_any_set() {
        for algorithm in Algorithm::ALL {
            assert_eq!(algorithm.name().parse(), Ok(algorithm));
            for balancer in [algorithm.build(), algorithm.build_seeded(3)] {
                let all = |_: usize| true;
                assert_eq!(balancer.pick(&Pick::new()), None, "{algorithm}");
                for weights in [&[][..], &[0, 0, 0], &[u32::MAX, 0, 1], &[1; 1000]] {
                    balancer.update(&endpoints(weights));
                    let picked = balancer.pick(&Pick::new().key(7));
                    assert_eq!(picked.is_some(), !weights.is_empty(), "{algorithm}");
                    assert!(picked.is_none_or(|index| index < weights.len()));
                    assert_eq!(balancer.pick(&Pick::new().skip(&all)), None);
                }
            }
        }
        assert_eq!(Algorithm::default(), Algorithm::P2c);
        assert!("Random".parse::<Algorithm>().is_err());
    }
}
