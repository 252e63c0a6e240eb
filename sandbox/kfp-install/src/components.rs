//! The install's workloads as a user names them: what `kfbox cluster up` and `status` report
//! ready or waiting, in the order they can start.

pub struct Component {
    /// What the user reads, e.g. "API server".
    pub title: &'static str,
    /// The Deployment that runs it.
    pub deployment: &'static str,
    /// Installed only in some clusters: absent, it is not reported.
    pub optional: bool,
}

pub const COMPONENTS: [Component; 10] = [
    Component {
        title: "MySQL",
        deployment: "mysql",
        optional: false,
    },
    Component {
        title: "SeaweedFS (artifacts)",
        deployment: "seaweedfs",
        optional: false,
    },
    Component {
        title: "ML Metadata",
        deployment: "metadata-grpc-deployment",
        optional: false,
    },
    Component {
        title: "ML Metadata Envoy",
        deployment: "metadata-envoy-deployment",
        optional: false,
    },
    Component {
        title: "Argo workflow controller",
        deployment: "workflow-controller",
        optional: false,
    },
    Component {
        title: "API server",
        deployment: "ml-pipeline",
        optional: false,
    },
    Component {
        title: "persistence agent",
        deployment: "ml-pipeline-persistenceagent",
        optional: false,
    },
    Component {
        title: "scheduled-workflow controller",
        deployment: "ml-pipeline-scheduledworkflow",
        optional: false,
    },
    Component {
        title: "UI",
        deployment: "ml-pipeline-ui",
        optional: false,
    },
    Component {
        title: "package index (offline pip)",
        deployment: "kfbox-package-index",
        optional: true,
    },
];
