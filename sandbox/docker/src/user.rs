//! Who a step's container runs as: the user who runs kfbox, so that the files it writes are
//! theirs, unless the pipeline's `set_security_context` names a user or group, which then
//! holds as in a pod.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kfbox_step::{ExecutorError, SecurityContext, Step};

/// The container's user, as Docker's `--user` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerUser {
    pub uid: u32,
    /// `uid:gid`, or `uid` alone where the group comes from the image, as Kubernetes takes it
    /// when only `runAsUser` is given.
    pub spec: String,
}

impl ContainerUser {
    /// The user of a container started by kfbox's user `uid:gid` with `security`. A container
    /// that must not run as root and would is refused, as the kubelet refuses it.
    pub fn resolve(
        uid: u32,
        gid: u32,
        security: Option<SecurityContext>,
    ) -> Result<Self, ExecutorError> {
        let security = security.unwrap_or_default();
        let user = match (security.run_as_user, security.run_as_group) {
            (None, None) => Self {
                uid,
                spec: format!("{uid}:{gid}"),
            },
            (Some(user), None) => Self {
                uid: user,
                spec: user.to_string(),
            },
            (user, Some(group)) => {
                let user = user.unwrap_or(uid);
                Self {
                    uid: user,
                    spec: format!("{user}:{group}"),
                }
            }
        };
        if security.run_as_non_root && user.uid == 0 {
            let whose = if security.run_as_user.is_some() {
                "run_as_user is 0"
            } else {
                "kfbox runs as root and the step does not name another user"
            };
            return Err(ExecutorError::Unrunnable(format!(
                "set_security_context(run_as_non_root=True): the container would run as root ({whose}), so it is not started, as Kubernetes would not start it\nhint: give the task a run_as_user other than 0"
            )));
        }
        Ok(user)
    }

    /// Whether the container's user is neither kfbox's user `uid` nor root: it then reaches
    /// the step's files only if they are opened to it (see [`open_mounts`]).
    pub fn is_stranger_to(&self, uid: u32) -> bool {
        self.uid != uid && self.uid != 0
    }
}

/// Images keep `/root` closed to every user but root, and the step's files are bound at their
/// host paths: under `/root`, a container running as another user cannot reach them.
pub(crate) fn reachable_by_strangers(step: &Step) -> Result<(), ExecutorError> {
    match step.mounts.iter().find(|m| m.path.starts_with("/root")) {
        Some(mount) => Err(ExecutorError::Unrunnable(format!(
            "set_security_context: the container runs as another user than kfbox's, and the step's files are under /root ({}), which images keep closed to all but root\nhint: set KFBOX_HOME to a directory outside /root (e.g. /var/lib/kfbox)",
            mount.path.display()
        ))),
        None => Ok(()),
    }
}

/// Open the step's files (its mounts) to every user, as a pod's volumes are open to the uid it
/// runs as: readable where the step reads, writable where it writes. The directories above them
/// stay owner-only, so no other user of this machine can reach them; the container reaches
/// them through its bind mounts. Symbolic links are left alone (changing one's mode would
/// change its target's).
pub(crate) fn open_mounts(step: &Step) -> io::Result<()> {
    for mount in &step.mounts {
        open_tree(&mount.path, mount.writable)?;
    }
    Ok(())
}

fn open_tree(path: &Path, writable: bool) -> io::Result<()> {
    let metadata = fs_err::symlink_metadata(path)?;
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Ok(());
    }
    let add = match (file_type.is_dir(), writable) {
        (true, true) => 0o777,
        (true, false) => 0o755,
        (false, true) => 0o666,
        (false, false) => 0o644,
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode | add != mode {
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode | add))?;
    }
    if file_type.is_dir() {
        for entry in fs_err::read_dir(path)? {
            open_tree(&entry?.path(), writable)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(user: Option<u32>, group: Option<u32>, non_root: bool) -> Option<SecurityContext> {
        Some(SecurityContext {
            run_as_user: user,
            run_as_group: group,
            run_as_non_root: non_root,
        })
    }

    #[test]
    fn the_security_context_names_the_containers_user() {
        let spec = |security| ContainerUser::resolve(1000, 1000, security).unwrap().spec;
        assert_eq!(spec(None), "1000:1000");
        assert_eq!(spec(context(Some(1234), None, false)), "1234");
        assert_eq!(spec(context(Some(1234), Some(2345), true)), "1234:2345");
        assert_eq!(spec(context(None, Some(2345), false)), "1000:2345");
        let root = ContainerUser::resolve(0, 0, context(None, None, true));
        assert!(
            matches!(root, Err(ExecutorError::Unrunnable(m)) if m.contains("kfbox runs as root"))
        );
        let zero = ContainerUser::resolve(1000, 1000, context(Some(0), None, true));
        assert!(
            matches!(zero, Err(ExecutorError::Unrunnable(m)) if m.contains("run_as_user is 0"))
        );
        assert!(ContainerUser::resolve(0, 0, context(Some(7), None, true)).is_ok());
    }

    #[test]
    fn opening_a_tree_spares_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs_err::create_dir_all(tree.join("inner")).unwrap();
        fs_err::set_permissions(&tree, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = tree.join("inner/data");
        fs_err::write(&file, "x").unwrap();
        fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let outside = dir.path().join("secret");
        fs_err::write(&outside, "s").unwrap();
        fs_err::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        open_tree(&tree, false).unwrap();
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tree), 0o755);
        assert_eq!(mode(&file), 0o644);
        assert_eq!(mode(&outside), 0o600);
        open_tree(&tree, true).unwrap();
        assert_eq!(mode(&tree.join("inner")), 0o777);
        assert_eq!(mode(&file), 0o666);
    }
}
