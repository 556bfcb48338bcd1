//! The byte encoding of peer messages: bincode with a hard size limit. Decoding is a pure
//! function, so it can be fuzzed and property-tested; it never panics on any input.

use bincode::Options;
use relayer_protocol::Message;
use thiserror::Error;

/// Largest encoded message accepted (an observation of 20000 mixnodes is about 120 KB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A message that cannot be decoded.
#[derive(Debug, Error)]
pub enum WireError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a valid encoding.
    #[error("undecodable message: {0}")]
    Malformed(String),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(MAX_MESSAGE_BYTES as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

/// Encodes a message.
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    let bytes = options()
        .serialize(message)
        .map_err(|err| WireError::Malformed(err.to_string()))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes a message, refusing oversized or malformed input.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    options()
        .deserialize(bytes)
        .map_err(|err| WireError::Malformed(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use relayer_protocol::{Echo, MixnodeReward, Observation};

    #[test]
    fn messages_round_trip() {
        let messages = vec![
            Message::Observation(Observation {
                epoch: 3,
                signer_set_version: 1,
                author: 2,
                values: vec![MixnodeReward {
                    mix_id: 1,
                    uptime_bp: 10,
                }],
                signature: vec![9; 64],
            }),
            Message::Echo(Echo {
                epoch: 1,
                proposer: 0,
                data_hash: [5; 32],
                signature: vec![1; 64],
            }),
        ];
        for message in messages {
            assert_eq!(decode(&encode(&message).unwrap()).unwrap(), message);
        }
    }

    #[test]
    fn garbage_and_oversized_input_are_errors() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0xff; 17]).is_err());
        assert!(matches!(
            decode(&vec![0; MAX_MESSAGE_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
        // A length prefix claiming a huge vector is refused by the limit, not allocated.
        let mut bytes = vec![0u8, 0, 0, 0];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&[0; 2]);
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&bytes).is_err());
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
