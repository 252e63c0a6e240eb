//! The names objects of the install use to find each other.

/// The namespace KFP's single-user install lives in.
pub const NAMESPACE: &str = "kubeflow";
/// The S3 bucket of the pipeline root and Argo's logs.
pub const PIPELINE_BUCKET: &str = "mlpipeline";
/// The install's settings, read by the components through `configMapKeyRef`.
pub const INSTALL_CONFIG: &str = "pipeline-install-config";
/// ML Metadata's gRPC service, which the API server waits for and Envoy forwards to.
pub const GRPC_SERVICE: &str = "metadata-grpc-service";
pub const GRPC_PORT: i32 = 8080;
/// The object-store credentials every KFP component reads (the names are MinIO's, kept for
/// compatibility). The store is reachable only inside the cluster.
pub const ARTIFACT_SECRET: &str = "mlpipeline-minio-artifact";
/// The database account (root without a password, reachable only inside the cluster).
pub const MYSQL_SECRET: &str = "mysql-secret";
/// The in-cluster package index for nodes without network (`package_index.rs`).
pub const PACKAGE_INDEX: &str = "kfbox-package-index";
pub const PACKAGE_INDEX_PORT: i32 = 8080;
