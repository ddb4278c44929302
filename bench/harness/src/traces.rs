//! `archlab traces serve|show|compare|export`: receive, keep, show, compare and export
//! traces. The work lives in the `archlab-traces` crate, whose receiver the services' tests
//! also start in-process; this module only mounts it.

pub use archlab_traces::TracesArgs;

/// Run an `archlab traces` subcommand.
pub async fn run(args: TracesArgs) -> anyhow::Result<()> {
    archlab_traces::run(args).await
}
