//! The install's workloads as a user names them: what `kfbox cluster up` and `status` report
//! ready or waiting, in the order they can start.

pub struct Component {
    /// What the user reads, e.g. "API server".
    pub title: &'static str,
    /// The Deployment that runs it.
    pub deployment: &'static str,
}

pub const COMPONENTS: [Component; 9] = [
    Component {
        title: "MySQL",
        deployment: "mysql",
    },
    Component {
        title: "SeaweedFS (artifacts)",
        deployment: "seaweedfs",
    },
    Component {
        title: "ML Metadata",
        deployment: "metadata-grpc-deployment",
    },
    Component {
        title: "ML Metadata Envoy",
        deployment: "metadata-envoy-deployment",
    },
    Component {
        title: "Argo workflow controller",
        deployment: "workflow-controller",
    },
    Component {
        title: "API server",
        deployment: "ml-pipeline",
    },
    Component {
        title: "persistence agent",
        deployment: "ml-pipeline-persistenceagent",
    },
    Component {
        title: "scheduled-workflow controller",
        deployment: "ml-pipeline-scheduledworkflow",
    },
    Component {
        title: "UI",
        deployment: "ml-pipeline-ui",
    },
];
