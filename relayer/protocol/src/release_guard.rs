//! A build with the `planted-bugs` feature and without debug assertions (a release build)
//! does not compile. Kept alone in this file so `scripts/check-tree.sh` can compile it by
//! itself and prove the guard holds.

#[cfg(all(feature = "planted-bugs", not(debug_assertions)))]
compile_error!("the `planted-bugs` feature is for tests only: a release build refuses it");
