//! Reaching the Docker daemon, and what can go wrong with it.

/// The daemon this process talks to: `DOCKER_HOST`, else the local socket.
pub async fn connect() -> Result<bollard::Docker, DockerError> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let unreachable = |source| DockerError::Unreachable {
        host: host.clone(),
        source,
    };
    let docker = bollard::Docker::connect_with_defaults().map_err(unreachable)?;
    let answer = async {
        // Old daemons refuse requests that name a newer API version than theirs.
        let docker = docker.negotiate_version().await?;
        docker.ping().await?;
        Ok(docker)
    };
    // A DOCKER_HOST on a machine that is down must not hold up a run for the client's
    // two-minute default.
    match tokio::time::timeout(ANSWER_WITHIN, answer).await {
        Ok(answered) => answered.map_err(unreachable),
        Err(_) => Err(DockerError::Silent {
            host,
            seconds: ANSWER_WITHIN.as_secs(),
        }),
    }
}

/// How long the daemon has to answer a first ping.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("no Docker daemon answers at {host}\nhint: start Docker (`sudo dockerd &` or `sudo systemctl start docker`), or set DOCKER_HOST")]
    Unreachable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the Docker daemon at {host} did not answer within {seconds} s\nhint: check DOCKER_HOST and that the daemon runs (`docker info`)")]
    Silent { host: String, seconds: u64 },
    #[error("Docker: {0}")]
    Api(#[from] bollard::errors::Error),
    #[error("cannot read or write {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Build(String),
}
