//! Hands the Temporal API's compiled descriptor set to the crate: `temporalio-protos` builds it
//! (and says where, through its `links` metadata) but does not export it, and reading the
//! Temporal CLI's and Web UI's proto3 JSON histories needs it (src/replay.rs).

fn main() {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .expect("temporalio-protos publishes its descriptor path (links = \"temporalio_protos\")");
    println!("cargo:rerun-if-changed={path}");
    println!("cargo:rustc-env=TEMPORAL_API_DESCRIPTORS={path}");
}
