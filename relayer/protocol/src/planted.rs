//! Deliberate bugs in production code, for proving that the simulator finds bugs. The names
//! always exist (so configs and reports can carry them); the switches that turn a bug on exist
//! only with the `planted-bugs` feature, which a release build refuses to compile.

use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};

/// A bug that can be planted in production code (see `docs/design.md`, "Planted bugs").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum PlantedBug {
    /// The finalizer stores the winner's copy without verifying it.
    TrustWinnerCopy,
    /// The store acknowledges echo decisions it does not make durable (relayer-store).
    ForgetEchoDecisions,
    /// A failed write of the official data marks the epoch done anyway.
    DropFailedFinalization,
}

crate::derived_names!(PlantedBug, "planted bug");

/// Whether planted bugs can be switched on in this build.
pub const PLANTED_BUGS_AVAILABLE: bool = cfg!(feature = "planted-bugs");
