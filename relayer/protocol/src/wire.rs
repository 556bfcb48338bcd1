//! The byte encoding of peer messages: postcard (maintained, compact varints) under a
//! versioned protocol id, with a hard size limit. An observation travels as its uptimes only,
//! in the order of the network's mixnode set (every member knows the set, so mix ids would be
//! redundant): about 2 bytes per mixnode instead of 4. Decoding is a pure function, so it can
//! be property-tested; it never panics and never allocates more than its input allows.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::MemberIndex;
use crate::messages::{Message, Observation};
use nym_rewards::msg::MixnodeReward;

/// The libp2p protocol id of this encoding and message set, before the mixnode set's id
/// ([`Codec::protocol_id`]): one persistent stream per pair and direction, each message a
/// u32 big-endian length and its encoding. A peer speaking another version is refused: bump
/// the number with any change to [`Message`], its encoding or the framing.
pub const PROTOCOL_ID: &str = "/nym-rewards/msg-stream/2";

/// A short id of a mixnode set (16 hex digits of a domain-separated SHA-256 of its ids in
/// order), so members running different sets tell each other apart instead of refusing
/// every observation.
pub fn mixnode_set_id(mixnodes: &[u32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"nym-rewards/mixnode-set/v1");
    hasher.update((mixnodes.len() as u64).to_be_bytes());
    for mix_id in mixnodes {
        hasher.update(mix_id.to_be_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Largest encoded message accepted (an observation of 20,000 mixnodes is about 80 KB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A message that cannot be encoded or decoded.
#[derive(Debug, Error)]
pub enum WireError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a valid encoding.
    #[error("undecodable message: {0}")]
    Malformed(String),
    /// An observation whose mix ids are not the network's mixnode set (it cannot travel in
    /// the compact form; the protocol would refuse it anyway).
    #[error(
        "an observation of {got} values does not match this node's set of {expected} mixnodes (every member must run the same set)"
    )]
    NotTheMixnodeSet {
        /// Values in the observation.
        got: usize,
        /// Mixnodes in the set.
        expected: usize,
    },
}

/// The first byte of a frame: which form follows.
const OBSERVATION_FRAME: u8 = 0;
const MESSAGE_FRAME: u8 = 1;

/// An observation on the wire: uptimes in the mixnode set's order.
#[derive(Serialize, Deserialize)]
struct CompactObservation<Uptimes, Signature> {
    epoch: u64,
    signer_set_version: u32,
    author: MemberIndex,
    uptimes: Uptimes,
    signature: Signature,
}

/// Encodes and decodes the messages of one network (its mixnode set); cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    mixnodes: Arc<[u32]>,
}

impl Codec {
    /// The codec of a network whose observations cover `mixnodes` (ascending).
    pub fn new(mixnodes: &[u32]) -> Self {
        Self {
            mixnodes: mixnodes.into(),
        }
    }

    /// The mixnode set, ascending.
    pub fn mixnodes(&self) -> &[u32] {
        &self.mixnodes
    }

    /// The protocol id of this network: [`PROTOCOL_ID`] and the mixnode set's id.
    pub fn protocol_id(&self) -> String {
        format!("{PROTOCOL_ID}/set-{}", mixnode_set_id(&self.mixnodes))
    }

    /// Encodes a message.
    pub fn encode(&self, message: &Message) -> Result<Vec<u8>, WireError> {
        let mut bytes = match message {
            Message::Observation(observation) => {
                let uptimes = self.uptimes(&observation.values)?;
                let compact = CompactObservation {
                    epoch: observation.epoch,
                    signer_set_version: observation.signer_set_version,
                    author: observation.author,
                    uptimes: &uptimes,
                    signature: &observation.signature,
                };
                postcard::to_extend(&compact, vec![OBSERVATION_FRAME])
            }
            other => postcard::to_extend(other, vec![MESSAGE_FRAME]),
        }
        .map_err(|err| WireError::Malformed(err.to_string()))?;
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::TooLarge(bytes.len()));
        }
        bytes.shrink_to_fit();
        Ok(bytes)
    }

    /// Decodes a message, refusing oversized, malformed or trailing input, and observations
    /// in any but the compact form.
    pub fn decode(&self, bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::TooLarge(bytes.len()));
        }
        let (&frame, body) = bytes
            .split_first()
            .ok_or_else(|| WireError::Malformed("empty frame".into()))?;
        match frame {
            OBSERVATION_FRAME => {
                let compact: CompactObservation<Vec<u16>, Vec<u8>> = whole(body)?;
                if compact.uptimes.len() != self.mixnodes.len() {
                    return Err(WireError::NotTheMixnodeSet {
                        got: compact.uptimes.len(),
                        expected: self.mixnodes.len(),
                    });
                }
                let values = self
                    .mixnodes
                    .iter()
                    .zip(compact.uptimes)
                    .map(|(&mix_id, uptime_bp)| MixnodeReward { mix_id, uptime_bp })
                    .collect();
                Ok(Message::Observation(Observation {
                    epoch: compact.epoch,
                    signer_set_version: compact.signer_set_version,
                    author: compact.author,
                    values,
                    signature: compact.signature,
                }))
            }
            MESSAGE_FRAME => match whole::<Message>(body)? {
                Message::Observation(_) => Err(WireError::Malformed(
                    "an observation outside its compact frame".into(),
                )),
                message => Ok(message),
            },
            other => Err(WireError::Malformed(format!("unknown frame kind {other}"))),
        }
    }

    /// The uptimes of `values`, which must name exactly the mixnode set, in order.
    fn uptimes(&self, values: &[MixnodeReward]) -> Result<Vec<u16>, WireError> {
        let same_ids = values.len() == self.mixnodes.len()
            && values
                .iter()
                .zip(self.mixnodes.iter())
                .all(|(value, &mix_id)| value.mix_id == mix_id);
        if !same_ids {
            return Err(WireError::NotTheMixnodeSet {
                got: values.len(),
                expected: self.mixnodes.len(),
            });
        }
        Ok(values.iter().map(|value| value.uptime_bp).collect())
    }
}

/// Decodes `bytes` as one `T`, with nothing left over.
fn whole<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|err| WireError::Malformed(err.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Block, Echo, ObservationRef};

    fn codec() -> Codec {
        Codec::new(&[1, 2, 5])
    }

    fn observation(values: Vec<MixnodeReward>) -> Message {
        Message::Observation(Observation {
            epoch: 3,
            signer_set_version: 1,
            author: 2,
            values,
            signature: vec![9; 64],
        })
    }

    fn set_values(uptimes: [u16; 3]) -> Vec<MixnodeReward> {
        [1, 2, 5]
            .into_iter()
            .zip(uptimes)
            .map(|(mix_id, uptime_bp)| MixnodeReward { mix_id, uptime_bp })
            .collect()
    }

    #[test]
    fn the_protocol_id_names_the_mixnode_set() {
        let id = codec().protocol_id();
        assert!(id.starts_with(&format!("{PROTOCOL_ID}/set-")), "{id}");
        assert_eq!(id, Codec::new(&[1, 2, 5]).protocol_id(), "stable");
        for other in [&[1, 2][..], &[1, 2, 6], &[1, 2, 5, 6], &[5, 2, 1]] {
            assert_ne!(id, Codec::new(other).protocol_id(), "{other:?}");
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let messages = vec![
            observation(set_values([0, 10_000, 77])),
            Message::Block(Block {
                epoch: 1,
                signer_set_version: 1,
                proposer: 3,
                observations: vec![ObservationRef {
                    author: 0,
                    digest: [4; 32],
                }],
                data_hash: [5; 32],
            }),
            Message::Echo(Echo {
                epoch: 1,
                proposer: 0,
                data_hash: [5; 32],
                signature: vec![1; 64],
            }),
            Message::ObservationRequest {
                epoch: 2,
                reference: ObservationRef {
                    author: 1,
                    digest: [6; 32],
                },
            },
            Message::Holding {
                epoch: 2,
                authors: vec![0b101],
            },
            Message::Accepted { epoch: u64::MAX },
        ];
        for message in messages {
            let codec = codec();
            assert_eq!(
                codec.decode(&codec.encode(&message).unwrap()).unwrap(),
                message
            );
        }
    }

    #[test]
    fn an_observation_costs_about_two_bytes_per_mixnode() {
        let mixnodes: Vec<u32> = (1..=1_000).collect();
        let values = mixnodes
            .iter()
            .map(|&mix_id| MixnodeReward {
                mix_id,
                uptime_bp: 9_000,
            })
            .collect();
        let bytes = Codec::new(&mixnodes)
            .encode(&observation(values))
            .unwrap()
            .len();
        assert!(bytes <= 2 * 1_000 + 100, "{bytes} bytes");
    }

    #[test]
    fn an_observation_of_another_mixnode_set_is_refused_both_ways() {
        let codec = codec();
        let mut values = set_values([1, 2, 3]);
        values[1].mix_id = 3;
        assert!(matches!(
            codec.encode(&observation(values)),
            Err(WireError::NotTheMixnodeSet { .. })
        ));
        let shorter = Codec::new(&[1, 2]);
        let bytes = shorter
            .encode(&observation(set_values([1, 2, 3])[..2].to_vec()))
            .unwrap();
        assert!(matches!(
            codec.decode(&bytes),
            Err(WireError::NotTheMixnodeSet {
                got: 2,
                expected: 3
            })
        ));
        // The full form is not accepted for an observation: one encoding per message.
        let full = postcard::to_extend(&observation(set_values([1, 2, 3])), vec![MESSAGE_FRAME]);
        assert!(matches!(
            codec.decode(&full.unwrap()),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_trailing_and_oversized_input_are_errors() {
        let codec = codec();
        assert!(codec.decode(&[]).is_err());
        assert!(codec.decode(&[0xff; 17]).is_err());
        assert!(matches!(
            codec.decode(&vec![0; MAX_MESSAGE_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
        let mut bytes = codec.encode(&Message::Accepted { epoch: 1 }).unwrap();
        bytes.push(0);
        assert!(matches!(codec.decode(&bytes), Err(WireError::Malformed(_))));
        // A count far beyond the input is refused without allocating it: observation frame,
        // epoch 0, version 0, author 0, uptimes count u32::MAX.
        let huge = [OBSERVATION_FRAME, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(codec.decode(&huge).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = codec().decode(&bytes);
        }

        #[test]
        fn observations_round_trip(
            epoch in proptest::prelude::any::<u64>(),
            author in proptest::prelude::any::<u16>(),
            uptimes in proptest::collection::vec(0u16..=10_000, 0..64),
        ) {
            let mixnodes: Vec<u32> = (0..uptimes.len() as u32).map(|i| i * 3 + 1).collect();
            let codec = Codec::new(&mixnodes);
            let message = Message::Observation(Observation {
                epoch,
                signer_set_version: 1,
                author,
                values: mixnodes.iter().zip(uptimes).map(|(&mix_id, uptime_bp)| MixnodeReward { mix_id, uptime_bp }).collect(),
                signature: vec![1; 64],
            });
            proptest::prop_assert_eq!(codec.decode(&codec.encode(&message).unwrap()).unwrap(), message);
        }
    }
}
