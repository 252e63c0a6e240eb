// The kfbox server's API: the Kubeflow Pipelines v2beta1 routes, and kfbox's own read routes
// under /apis/v1alpha1 (graphs, artifacts, logs).

const TOKEN_KEY = "kfbox.token";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Listeners told when the server asks for a token (a server bound beyond loopback). */
const tokenListeners = new Set<() => void>();
export function onTokenNeeded(listener: () => void): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}
export function setToken(token: string) {
  localStorage.setItem(TOKEN_KEY, token.trim());
}

function headers(extra?: HeadersInit): Headers {
  const h = new Headers(extra);
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) h.set("Authorization", `Bearer ${token}`);
  return h;
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers: headers(init.headers) });
  } catch {
    throw new ApiError("kfbox does not answer: is `kfbox up` still running?", 0);
  }
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") message = body.message;
  } catch {
    // Not the API's error JSON: keep the status line.
  }
  if (response.status === 401) tokenListeners.forEach((l) => l());
  throw new ApiError(message, response.status);
}

export async function get<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method: "POST" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  return (await request(path, init)).json() as Promise<T>;
}

export async function del(path: string): Promise<void> {
  await request(path, { method: "DELETE" });
}

export type Predicate = {
  key: string;
  operation:
    | "EQUALS"
    | "NOT_EQUALS"
    | "IS_SUBSTRING"
    | "IN"
    | "GREATER_THAN"
    | "GREATER_THAN_EQUALS"
    | "LESS_THAN"
    | "LESS_THAN_EQUALS";
  string_value?: string;
  string_values?: { values: string[] };
  /** kfbox's own, for `parameters.NAME` and `metrics.NAME`. */
  double_value?: number;
};

/** Runs' parameter and metric values (`parameters.lr`, `metrics.accuracy`), for list columns. */
export type RunValues = {
  names: string[];
  runs: Record<string, Record<string, unknown>>;
};

export type ListOptions = {
  page_size?: number;
  page_token?: string;
  sort_by?: string;
  predicates?: Predicate[];
  experiment_id?: string;
};

export function listQuery(options: ListOptions): string {
  const q = new URLSearchParams();
  if (options.page_size) q.set("page_size", String(options.page_size));
  if (options.page_token) q.set("page_token", options.page_token);
  if (options.sort_by) q.set("sort_by", options.sort_by);
  if (options.experiment_id) q.set("experiment_id", options.experiment_id);
  if (options.predicates?.length) q.set("filter", JSON.stringify({ predicates: options.predicates }));
  const text = q.toString();
  return text ? `?${text}` : "";
}

export type RunState =
  | "PENDING"
  | "RUNNING"
  | "SUCCEEDED"
  | "SKIPPED"
  | "FAILED"
  | "CANCELING"
  | "CANCELED"
  | "PAUSED"
  | "RUNTIME_STATE_UNSPECIFIED";

export type Run = {
  run_id: string;
  display_name: string;
  pipeline_name?: string;
  experiment_id: string;
  storage_state: string;
  description?: string;
  state: RunState;
  created_at: string;
  finished_at: string;
  error?: { message: string };
  runtime_config?: { parameters?: Record<string, unknown>; pipeline_root?: string };
  pipeline_version_reference?: { pipeline_id: string; pipeline_version_id: string };
  recurring_run_id?: string;
  pipeline_spec?: unknown;
};

export type Experiment = {
  experiment_id: string;
  display_name: string;
  description: string;
  created_at: string;
  storage_state: string;
  last_run_created_at: string;
};

export type Pipeline = {
  pipeline_id: string;
  display_name: string;
  description: string;
  created_at: string;
};

export type PipelineVersion = {
  pipeline_id: string;
  pipeline_version_id: string;
  display_name: string;
  description: string;
  created_at: string;
  pipeline_spec: unknown;
};

export type RecurringRun = {
  recurring_run_id: string;
  display_name: string;
  description?: string;
  status: "ENABLED" | "DISABLED";
  mode: string;
  created_at: string;
  experiment_id: string;
  max_concurrency?: string | number;
  no_catchup?: boolean;
  trigger?: {
    cron_schedule?: { cron: string; start_time?: string; end_time?: string };
    periodic_schedule?: { interval_second: string | number };
  };
  pipeline_version_reference?: { pipeline_id: string; pipeline_version_id: string };
  runtime_config?: { parameters?: Record<string, unknown> };
};

export type Page<K extends string, T> = { [key in K]?: T[] } & {
  total_size?: number;
  next_page_token?: string;
};

export type GraphNode = {
  id: string;
  name: string;
  kind: "container" | "importer" | "dag" | "condition" | "loop" | "iteration";
  parent?: string | null;
  component: string;
  state: string;
  execution_id?: number;
  attempts?: number;
  iteration_count?: number;
  /** A loop's iterations that started, by state. */
  iteration_states?: Record<string, number>;
  /** A loop of more than 40 iterations: they are in the graph a page at a time, when asked for. */
  paged?: boolean;
  condition?: string;
  started_at?: string;
  finished_at?: string;
  error?: string;
  reason?: string;
  /** What a running task is busy with before its program starts (installing its packages). */
  phase?: string;
  cached_from?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  input_artifacts?: [string, number][];
  output_artifacts?: [string, number][];
};

/** One page of a large loop's iterations. */
export type LoopPage = { loop: string; offset: number; state?: string };

export type Graph = {
  nodes: GraphNode[];
  edges: { from: string; to: string }[];
  /** Every step's state, counted over the whole run (iterations left out of `nodes` too). */
  step_states: Record<string, number>;
  /** The page of a large loop's iterations in `nodes`, when one was asked for. */
  page?: LoopPage & { matched: number; limit: number };
  /** A run's parameter values as it ran, defaults included. */
  parameters?: Record<string, unknown>;
  /** A run's outputs. */
  outputs?: Record<string, unknown>;
};

export type Artifact = {
  artifact_id: number;
  display_name: string;
  type: string;
  uri: string;
  metadata: Record<string, unknown>;
  run_id?: string | null;
  created_at: string;
  name?: string;
  task?: string;
  execution_id?: number;
};

export type LineageStep = {
  execution_id: number;
  run_id?: string | null;
  task: string;
  state: string;
  name: string;
};

export type ArtifactWithLineage = Artifact & {
  producers: LineageStep[];
  consumers: LineageStep[];
  inputs: Artifact[];
};

export const routes = {
  runs: "/apis/v2beta1/runs",
  run: (id: string) => `/apis/v2beta1/runs/${encodeURIComponent(id)}`,
  runGraph: (id: string, page?: LoopPage) => {
    const base = `/apis/v1alpha1/runs/${encodeURIComponent(id)}/graph`;
    if (!page) return base;
    const query = new URLSearchParams({ loop: page.loop, offset: String(page.offset) });
    if (page.state) query.set("state", page.state);
    return `${base}?${query}`;
  },
  runValues: (ids: string[]) => `/apis/v1alpha1/run-values?run_ids=${encodeURIComponent(ids.join(","))}`,
  runArtifacts: (id: string) => `/apis/v1alpha1/runs/${encodeURIComponent(id)}/artifacts`,
  /** A task's log; `componentOnly` leaves out the SDK executor's and kfbox's diagnostic lines. */
  log: (run: string, node: string, follow: boolean, componentOnly = false) => {
    const query = [follow ? "follow=true" : "", componentOnly ? "component_only=true" : ""].filter(Boolean).join("&");
    return `/apis/v1alpha1/runs/${encodeURIComponent(run)}/nodes/${encodeURIComponent(node)}/log${query ? `?${query}` : ""}`;
  },
  experiments: "/apis/v2beta1/experiments",
  experiment: (id: string) => `/apis/v2beta1/experiments/${encodeURIComponent(id)}`,
  pipelines: "/apis/v2beta1/pipelines",
  pipeline: (id: string) => `/apis/v2beta1/pipelines/${encodeURIComponent(id)}`,
  versions: (id: string) => `/apis/v2beta1/pipelines/${encodeURIComponent(id)}/versions`,
  versionGraph: (p: string, v: string) =>
    `/apis/v1alpha1/pipelines/${encodeURIComponent(p)}/versions/${encodeURIComponent(v)}/graph`,
  recurringRuns: "/apis/v2beta1/recurringruns",
  recurringRun: (id: string) => `/apis/v2beta1/recurringruns/${encodeURIComponent(id)}`,
  artifact: (id: number | string) => `/apis/v1alpha1/artifacts/${id}`,
  lab: "/apis/v1alpha1/lab",
  artifactContent: (id: number | string, limit?: number) =>
    `/apis/v1alpha1/artifacts/${id}/content${limit ? `?limit=${limit}` : ""}`,
};

/** JupyterLab beside the server (`kfbox up` starts it; `--no-lab` leaves it off). */
export type LabStatus = {
  state: "off" | "starting" | "ready" | "failed";
  detail: string;
  fraction?: number;
  url?: string;
  error?: string;
  log?: string;
};

/** Save a response body as a file (with the token when the server needs one). */
export async function download(path: string, fileName: string) {
  const blob = await (await request(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
