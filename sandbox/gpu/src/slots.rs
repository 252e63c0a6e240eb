use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::product::ProductSelector;

/// What to do with a GPU request on a machine without GPUs (`--gpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuPolicy {
    /// Fail the task at once: its results would not mean what they should.
    Require,
    /// Run it without a GPU and say so (the laptop default: the code usually falls back to CPU).
    #[default]
    Prefer,
    /// Run it without a GPU, silently.
    Ignore,
}

/// The GPUs a run may hand out and the rules for doing so.
#[derive(Debug, Clone)]
pub struct GpuPlan {
    pub slots: Arc<GpuSlots>,
    pub policy: GpuPolicy,
}

/// What happens to one task's accelerator request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Wait for `count` of the GPUs `among`; `warning`, when there is one, is for the user.
    Wait {
        count: usize,
        among: BTreeSet<u32>,
        warning: Option<String>,
    },
    /// Run without GPUs; the text, when there is one, is a warning for the user.
    Without(Option<String>),
    /// Never satisfiable here: fail the task with this message.
    Refuse(String),
}

impl GpuPlan {
    /// `models`: the name of each GPU, by index.
    pub fn new(models: Vec<String>, share: bool, policy: GpuPolicy) -> Self {
        Self {
            slots: Arc::new(GpuSlots::new(models, share)),
            policy,
        }
    }

    /// Decide a request of `count` GPUs, `nvidia` telling whether NVIDIA GPUs satisfy its type,
    /// `what` describing it for messages and `product` the GPU model its node selector names.
    pub fn admit(
        &self,
        count: u32,
        nvidia: bool,
        what: &str,
        product: Option<&ProductSelector>,
    ) -> Admission {
        let have = self.slots.total();
        if have > 0 && !nvidia {
            return Admission::Refuse(format!(
                "the task asks for {what}, and this machine has only NVIDIA GPUs"
            ));
        }
        if have == 0 {
            return match self.policy {
                GpuPolicy::Require => Admission::Refuse(format!(
                    "the task asks for {what}, and this machine has none (`nvidia-smi` finds no GPU)\n\
                     hint: `--gpu prefer` runs it without one, with a warning; `kfbox doctor` shows what was found"
                )),
                GpuPolicy::Prefer => Admission::Without(Some(format!(
                    "asks for {what}; this machine has none, so it runs without (`--gpu require` fails such tasks instead)"
                ))),
                GpuPolicy::Ignore => Admission::Without(None),
            };
        }
        let all: BTreeSet<u32> = (0..have as u32).collect();
        let (among, warning) = match product {
            None => (all, None),
            Some(product) => {
                let matching: BTreeSet<u32> = (0..have as u32)
                    .filter(|i| product.matches(&self.slots.models[*i as usize]))
                    .collect();
                if matching.is_empty() {
                    let mut models = self.slots.models.clone();
                    models.dedup();
                    let models = models.join(", ");
                    match self.policy {
                        GpuPolicy::Require => return Admission::Refuse(format!(
                            "the task asks for {what} on a node labelled {product}, and this machine's GPUs are {models} (on a cluster it would wait for such a node)\n\
                             hint: `--gpu prefer` runs it on the GPUs there are, with a warning"
                        )),
                        GpuPolicy::Prefer => (all, Some(format!(
                            "asks for {what} on a node labelled {product}; this machine's GPUs are {models}, so it runs on those (`--gpu require` fails such tasks instead)"
                        ))),
                        GpuPolicy::Ignore => (all, None),
                    }
                } else {
                    (matching, None)
                }
            }
        };
        if count as usize > among.len() {
            let kind = if among.len() < have {
                " of that kind"
            } else {
                ""
            };
            return Admission::Refuse(format!(
                "the task asks for {what}, and this machine has {}{kind}: it could never start",
                among.len()
            ));
        }
        Admission::Wait {
            count: count as usize,
            among,
            warning,
        }
    }
}

/// Whole GPUs, handed out in request order.
#[derive(Debug)]
pub struct GpuSlots {
    /// The name of each GPU, by index.
    models: Vec<String>,
    share: bool,
    state: Mutex<SlotState>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct SlotState {
    free: BTreeSet<u32>,
    /// Tickets of waiting requests; only the front one may take GPUs, so a request for many
    /// is not starved by a stream of requests for one.
    queue: VecDeque<u64>,
    next_ticket: u64,
}

impl GpuSlots {
    /// GPUs numbered from 0, `models` naming each; with `share`, requests never wait and get
    /// the lowest GPUs they may have.
    pub fn new(models: Vec<String>, share: bool) -> Self {
        Self {
            share,
            state: Mutex::new(SlotState {
                free: (0..models.len() as u32).collect(),
                ..SlotState::default()
            }),
            changed: Notify::new(),
            models,
        }
    }

    pub fn total(&self) -> usize {
        self.models.len()
    }

    /// Whether steps that asked for nothing must not see the GPUs (they are someone's slots).
    pub fn exclusive(&self) -> bool {
        self.total() > 0 && !self.share
    }

    /// Wait until `count` of the GPUs `among` are free and take them. `count` must not exceed
    /// `among` (`GpuPlan::admit` refuses such requests); dropping the future gives up the place
    /// in line.
    pub async fn acquire(self: &Arc<Self>, count: usize, among: &BTreeSet<u32>) -> GpuLease {
        assert!(
            count <= among.len(),
            "a request the plan should have refused"
        );
        if self.share || count == 0 {
            return GpuLease {
                slots: None,
                gpus: among.iter().take(count).copied().collect(),
            };
        }
        let ticket = {
            let mut state = self.state.lock().expect("gpu slots lock");
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            state.queue.push_back(ticket);
            ticket
        };
        let mut place = Place {
            slots: self,
            ticket: Some(ticket),
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.state.lock().expect("gpu slots lock");
                let fitting: Vec<u32> = state
                    .free
                    .intersection(among)
                    .take(count)
                    .copied()
                    .collect();
                if state.queue.front() == Some(&ticket) && fitting.len() == count {
                    let gpus = fitting;
                    for gpu in &gpus {
                        state.free.remove(gpu);
                    }
                    state.queue.pop_front();
                    place.ticket = None;
                    drop(state);
                    // The next in line may fit in what is left.
                    self.changed.notify_waiters();
                    return GpuLease {
                        slots: Some(self.clone()),
                        gpus,
                    };
                }
            }
            notified.await;
        }
    }

    fn release(&self, gpus: &[u32]) {
        self.state
            .lock()
            .expect("gpu slots lock")
            .free
            .extend(gpus.iter().copied());
        self.changed.notify_waiters();
    }
}

/// A waiting request's place in line, given up if the wait is abandoned (a cancelled run).
struct Place<'a> {
    slots: &'a GpuSlots,
    ticket: Option<u64>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.slots
                .state
                .lock()
                .expect("gpu slots lock")
                .queue
                .retain(|t| *t != ticket);
            self.slots.changed.notify_waiters();
        }
    }
}

/// GPUs held by one step; they return to the pool when the lease is dropped.
#[derive(Debug)]
pub struct GpuLease {
    slots: Option<Arc<GpuSlots>>,
    pub gpus: Vec<u32>,
}

impl Drop for GpuLease {
    fn drop(&mut self) {
        if let Some(slots) = &self.slots {
            slots.release(&self.gpus);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn models(count: usize) -> Vec<String> {
        vec!["NVIDIA Stand-in".to_owned(); count]
    }

    fn all(slots: &GpuSlots) -> BTreeSet<u32> {
        (0..slots.total() as u32).collect()
    }

    fn plan(gpus: usize, policy: GpuPolicy) -> GpuPlan {
        GpuPlan::new(vec!["NVIDIA Stand-in".to_owned(); gpus], false, policy)
    }

    #[test]
    fn requests_are_admitted_by_what_the_machine_has() {
        assert_eq!(
            plan(2, GpuPolicy::Require).admit(2, true, "2 GPUs", None),
            Admission::Wait {
                count: 2,
                among: BTreeSet::from([0, 1]),
                warning: None
            }
        );
        assert!(matches!(
            plan(2, GpuPolicy::Prefer).admit(3, true, "3 GPUs", None),
            Admission::Refuse(m) if m.contains("has 2")
        ));
        assert!(matches!(
            plan(1, GpuPolicy::Prefer).admit(1, false, "1 GPU of type TPU_V3", None),
            Admission::Refuse(m) if m.contains("only NVIDIA")
        ));
        assert!(matches!(
            plan(0, GpuPolicy::Require).admit(1, true, "1 GPU", None),
            Admission::Refuse(m) if m.contains("has none")
        ));
        assert!(matches!(
            plan(0, GpuPolicy::Prefer).admit(1, true, "1 GPU", None),
            Admission::Without(Some(_))
        ));
        assert_eq!(
            plan(0, GpuPolicy::Ignore).admit(4, true, "4 GPUs", None),
            Admission::Without(None)
        );
    }

    #[tokio::test]
    async fn steps_wait_for_free_gpus_and_get_distinct_ones() {
        let slots = Arc::new(GpuSlots::new(models(2), false));
        let first = slots.acquire(1, &all(&slots)).await;
        let second = slots.acquire(1, &all(&slots)).await;
        assert_ne!(first.gpus, second.gpus);
        // A third request waits while both are held.
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(1, &all(&slots)).await.gpus.clone() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        let freed = first.gpus.clone();
        drop(first);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting request got the freed GPU")
            .unwrap();
        assert_eq!(got, freed);
        drop(second);
    }

    #[tokio::test]
    async fn a_large_request_is_not_starved_by_small_ones() {
        let slots = Arc::new(GpuSlots::new(models(2), false));
        let held = slots.acquire(1, &all(&slots)).await;
        let big = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(2, &all(&slots)).await.gpus.len() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A later small request queues behind the big one even though a GPU is free.
        let small = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(1, &all(&slots)).await.gpus.len() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!small.is_finished() && !big.is_finished());
        drop(held);
        assert_eq!(big.await.unwrap(), 2);
        assert_eq!(small.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_abandoned_wait_gives_up_its_place() {
        let slots = Arc::new(GpuSlots::new(models(1), false));
        let held = slots.acquire(1, &all(&slots)).await;
        let abandoned =
            tokio::time::timeout(Duration::from_millis(20), slots.acquire(1, &all(&slots))).await;
        assert!(abandoned.is_err());
        drop(held);
        let next =
            tokio::time::timeout(Duration::from_secs(5), slots.acquire(1, &all(&slots))).await;
        assert!(
            next.is_ok(),
            "the line moved on after the abandoned request"
        );
    }

    #[tokio::test]
    async fn shared_gpus_never_wait() {
        let slots = Arc::new(GpuSlots::new(models(1), true));
        let a = slots.acquire(1, &all(&slots)).await;
        let b = slots.acquire(1, &all(&slots)).await;
        assert_eq!((a.gpus.clone(), b.gpus.clone()), (vec![0], vec![0]));
        assert!(!slots.exclusive());
    }

    #[test]
    fn a_product_selector_chooses_among_the_machines_kinds() {
        let models = vec![
            "Tesla T4".to_owned(),
            "NVIDIA A100-SXM4-40GB".to_owned(),
            "NVIDIA A100-SXM4-40GB".to_owned(),
        ];
        let a100 = ProductSelector {
            label: crate::product::PRODUCT_LABELS[0].into(),
            value: "NVIDIA-A100-SXM4-40GB".into(),
        };
        let l4 = ProductSelector {
            label: crate::product::PRODUCT_LABELS[1].into(),
            value: "nvidia-l4".into(),
        };
        let plan = GpuPlan::new(models.clone(), false, GpuPolicy::Prefer);
        assert!(matches!(
            plan.admit(2, true, "2 GPUs", Some(&a100)),
            Admission::Wait { count: 2, among, warning: None } if among == BTreeSet::from([1, 2])
        ));
        assert!(matches!(
            plan.admit(3, true, "3 GPUs", Some(&a100)),
            Admission::Refuse(m) if m.contains("has 2 of that kind")
        ));
        assert!(matches!(
            plan.admit(1, true, "1 GPU", Some(&l4)),
            Admission::Wait { count: 1, warning: Some(w), .. } if w.contains("Tesla T4, NVIDIA A100-SXM4-40GB")
        ));
        let strict = GpuPlan::new(models, false, GpuPolicy::Require);
        assert!(matches!(
            strict.admit(1, true, "1 GPU", Some(&l4)),
            Admission::Refuse(m) if m.contains("gke-accelerator=nvidia-l4")
        ));
    }

    #[tokio::test]
    async fn a_request_takes_only_gpus_it_may_have() {
        let slots = Arc::new(GpuSlots::new(models(3), false));
        let lease = slots.acquire(1, &BTreeSet::from([2])).await;
        assert_eq!(lease.gpus, vec![2]);
    }
}
