//! The byte encoding of peer messages: postcard (maintained, compact varints) under a
//! versioned protocol id, with a hard size limit. Decoding is a pure function, so it can be
//! property-tested; it never panics and never allocates more than its input allows.

use thiserror::Error;

use crate::messages::Message;

/// The libp2p protocol id of this encoding and message set. A peer speaking another version
/// is refused: bump the number with any change to [`Message`] or its encoding.
pub const PROTOCOL_ID: &str = "/nym-rewards/msg/2";

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
}

/// Encodes a message.
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    let bytes =
        postcard::to_allocvec(message).map_err(|err| WireError::Malformed(err.to_string()))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes a message, refusing oversized, malformed or trailing input.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (message, rest) = postcard::take_from_bytes::<Message>(bytes)
        .map_err(|err| WireError::Malformed(err.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MixnodeReward;
    use crate::messages::{Block, Echo, Observation, ObservationRef};

    fn observation(values: Vec<MixnodeReward>) -> Message {
        Message::Observation(Observation {
            epoch: 3,
            signer_set_version: 1,
            author: 2,
            values,
            signature: vec![9; 64],
        })
    }

    #[test]
    fn every_kind_round_trips() {
        let messages = vec![
            observation(vec![MixnodeReward {
                mix_id: 1,
                uptime_bp: 10,
            }]),
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
            assert_eq!(decode(&encode(&message).unwrap()).unwrap(), message);
        }
    }

    #[test]
    fn an_observation_costs_about_four_bytes_per_mixnode() {
        let values: Vec<MixnodeReward> = (1..=1_000)
            .map(|mix_id| MixnodeReward {
                mix_id,
                uptime_bp: 9_000,
            })
            .collect();
        let bytes = encode(&observation(values)).unwrap().len();
        assert!(bytes <= 4 * 1_000 + 100, "{bytes} bytes");
    }

    #[test]
    fn garbage_trailing_and_oversized_input_are_errors() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xff; 17]).is_err());
        assert!(matches!(
            decode(&vec![0; MAX_MESSAGE_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
        let mut bytes = encode(&Message::Accepted { epoch: 1 }).unwrap();
        bytes.push(0);
        assert!(matches!(decode(&bytes), Err(WireError::Malformed(_))));
        // An observation whose value count claims far more than the input holds is refused
        // without allocating it: kind 0, epoch 0, version 0, author 0, count u32::MAX.
        let huge = [0u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode(&huge).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn observations_round_trip(
            epoch in proptest::prelude::any::<u64>(),
            author in proptest::prelude::any::<u16>(),
            values in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u16..=10_000), 0..64),
        ) {
            let message = Message::Observation(Observation {
                epoch,
                signer_set_version: 1,
                author,
                values: values.into_iter().map(|(mix_id, uptime_bp)| MixnodeReward { mix_id, uptime_bp }).collect(),
                signature: vec![1; 64],
            });
            proptest::prop_assert_eq!(decode(&encode(&message).unwrap()).unwrap(), message);
        }
    }
}
