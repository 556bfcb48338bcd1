//! The mixnode set a node measures and the network rewards. By default ids `1..=mixnodes`
//! (`[sampling] mixnodes`); an operator network reads it instead from its monitor
//! (`[sampling] mixnode_set`, a file or an http(s) URL), once at start, in this JSON format:
//!
//! ```json
//! {"mix_ids": [3, 7, 12, 40]}
//! ```
//!
//! Every member must run the same set: observations travel as uptimes in the set's order, so
//! the set's digest is part of the message protocol id ([`relayer_protocol::wire::Codec`]) and
//! a peer running another set is refused with a log line naming both sets. A set with no
//! mixnode, more than the cap, or an id named twice is refused and the node does not start
//! (exit 2); a set that cannot be read or parsed stops it with exit 3, so a service manager
//! tries again.
//! A new set takes effect at a restart, which every member makes together.

use std::collections::BTreeSet;

use nym_rewards::rules::MAX_MIXNODES_CAP;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::SamplingSection;
use crate::monitor::{Location, MonitorError};

/// The document a monitor publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixnodeSetDocument {
    /// The mixnodes, in any order.
    pub mix_ids: Vec<u32>,
}

/// Why the mixnode set was refused.
#[derive(Debug, Error)]
pub enum SetError {
    /// The document could not be read.
    #[error("the mixnode set at {location}: {source}")]
    Read {
        /// Where.
        location: Location,
        /// Why.
        #[source]
        source: MonitorError,
    },
    /// A set that is empty or larger than the cap.
    #[error("the mixnode set must hold 1..={MAX_MIXNODES_CAP} mixnodes, it holds {0}")]
    Size(usize),
    /// An id named twice.
    #[error("mixnode {0} appears twice in the mixnode set")]
    Duplicate(u32),
}

impl SetError {
    /// Whether a later attempt may succeed: the document could not be read or parsed (the
    /// monitor down or answering an error, a file caught mid-write), as opposed to a set that
    /// was read and is wrong.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Read { .. })
    }
}

/// The mixnode ids of `document`, ascending, after checking them.
pub fn ids_of(document: MixnodeSetDocument) -> Result<Vec<u32>, SetError> {
    let count = document.mix_ids.len();
    if count == 0 || count > MAX_MIXNODES_CAP as usize {
        return Err(SetError::Size(count));
    }
    let mut ids = BTreeSet::new();
    for id in document.mix_ids {
        if !ids.insert(id) {
            return Err(SetError::Duplicate(id));
        }
    }
    Ok(ids.into_iter().collect())
}

/// The node's mixnode set: read from `sampling.mixnode_set` when given, else `1..=mixnodes`.
pub async fn load(
    sampling: &SamplingSection,
    client: &reqwest::Client,
) -> Result<Vec<u32>, SetError> {
    match &sampling.mixnode_set {
        None => Ok((1..=sampling.mixnodes).collect()),
        Some(location) => {
            let document = location
                .read(client)
                .await
                .map_err(|source| SetError::Read {
                    location: location.clone(),
                    source,
                })?;
            ids_of(document)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(mix_ids: &[u32]) -> Result<Vec<u32>, SetError> {
        ids_of(MixnodeSetDocument {
            mix_ids: mix_ids.to_vec(),
        })
    }

    #[test]
    fn a_set_is_sorted_and_checked() {
        assert_eq!(ids(&[40, 3, 12]).unwrap(), vec![3, 12, 40]);
        assert!(matches!(ids(&[]), Err(SetError::Size(0))));
        assert!(matches!(ids(&[5, 9, 5]), Err(SetError::Duplicate(5))));
        let too_many: Vec<u32> = (0..=MAX_MIXNODES_CAP).collect();
        assert!(matches!(ids(&too_many), Err(SetError::Size(_))));
        for text in [r#"{"mix_ids": [-1]}"#, r#"{"ids": [1]}"#, r#"[1, 2]"#] {
            assert!(
                serde_json::from_str::<MixnodeSetDocument>(text).is_err(),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn the_set_comes_from_the_monitor_or_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let mut sampling = SamplingSection {
            mixnodes: 3,
            ..SamplingSection::default()
        };
        assert_eq!(load(&sampling, &client).await.unwrap(), vec![1, 2, 3]);
        let file = dir.path().join("set.json");
        std::fs::write(&file, r#"{"mix_ids": [9, 4]}"#).unwrap();
        sampling.mixnode_set = Some(Location::File(file.clone()));
        assert_eq!(load(&sampling, &client).await.unwrap(), vec![4, 9]);
        std::fs::write(&file, r#"{"mix_ids": [9, 9]}"#).unwrap();
        assert!(matches!(
            load(&sampling, &client).await,
            Err(SetError::Duplicate(9))
        ));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/set.json", closed.local_addr().unwrap());
        drop(closed);
        sampling.mixnode_set = Some(url.parse().unwrap());
        let unreachable = load(&sampling, &client).await.unwrap_err();
        assert!(unreachable.is_temporary(), "{unreachable}");
        assert!(!SetError::Duplicate(9).is_temporary());
    }
}
