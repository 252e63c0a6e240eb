// Task and run states: an icon and a word, never colour alone.

const LABELS: Record<string, string> = {
  SUCCEEDED: "Succeeded",
  COMPLETE: "Succeeded",
  CACHED: "Cached",
  RUNNING: "Running",
  PENDING: "Pending",
  NOT_RUN: "Not run",
  FAILED: "Failed",
  SKIPPED: "Skipped",
  CANCELING: "Canceling",
  CANCELED: "Canceled",
  PAUSED: "Paused",
  RUNTIME_STATE_UNSPECIFIED: "Unknown",
};

const ICONS: Record<string, string> = {
  SUCCEEDED: "✓",
  COMPLETE: "✓",
  CACHED: "↺",
  RUNNING: "◔",
  PENDING: "○",
  NOT_RUN: "–",
  FAILED: "✕",
  SKIPPED: "↷",
  CANCELING: "⊘",
  CANCELED: "⊘",
};

export function stateLabel(state: string): string {
  return LABELS[state] ?? state.charAt(0) + state.slice(1).toLowerCase();
}

export function StateIcon(props: { state: string }) {
  return (
    <span class={`state-icon state-${props.state}`} aria-hidden="true">
      {ICONS[props.state] ?? "•"}
    </span>
  );
}

export function StateBadge(props: { state: string }) {
  return (
    <span class={`state-badge state-${props.state}`} data-state={props.state}>
      <StateIcon state={props.state} />
      {stateLabel(props.state)}
    </span>
  );
}

export function isActive(state: string): boolean {
  return state === "RUNNING" || state === "PENDING" || state === "CANCELING";
}
