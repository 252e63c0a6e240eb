// The form that starts a run: its name, experiment and parameters, for a pipeline version
// (from its page) or for a run's own pipeline again (a run's "Rerun", prefilled with its values).
import { useState } from "preact/hooks";
import { get, listQuery, post, routes, type Experiment, type Page } from "../api";
import { ParamInputs, collect, rootParameters, useParamFields } from "./ParamForm";
import { ErrorBox } from "./common";
import { useLoad } from "../hooks";
import { navigate } from "../router";

/** What the run runs: a pipeline version, or a pipeline spec given inline. */
export type RunSource =
  | { pipeline_version_reference: { pipeline_id: string; pipeline_version_id: string } }
  | { pipeline_spec: unknown };

export function RunForm(props: {
  spec: unknown;
  source: RunSource;
  name: string;
  title?: string;
  /** Starting values (a run's); defaults otherwise. */
  values?: Record<string, unknown>;
  experimentId?: string;
}) {
  const [fields, setFields] = useParamFields(rootParameters(props.spec), props.values);
  // Checked as the user types once a submit was tried.
  const [tried, setTried] = useState(false);
  const problems = tried ? collect(fields).problems : {};
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [name, setName] = useState(props.name);
  const [experiment, setExperiment] = useState(props.experimentId ?? "");
  const experiments = useLoad(
    () => get<Page<"experiments", Experiment>>(routes.experiments + listQuery({ page_size: 100, sort_by: "created_at desc" })),
    [],
  );
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const { values, problems } = collect(fields);
    setTried(true);
    if (Object.keys(problems).length) return setError("Some parameters need another value (see above).");
    if (!name.trim()) return setError("Give the run a name.");
    setBusy(true);
    setError(undefined);
    try {
      const run = await post<{ run_id: string }>(routes.runs, {
        display_name: name.trim(),
        experiment_id: experiment || undefined,
        ...props.source,
        runtime_config: { parameters: values },
      });
      navigate(`/runs/details/${run.run_id}`);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };
  const title = props.title ?? "Start a run";
  return (
    <form class="run-form card" onSubmit={submit} aria-label={title} noValidate>
      <h2>{title}</h2>
      <label for="run-name">Run name</label>
      <input id="run-name" type="text" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      <label for="run-experiment">Experiment</label>
      <select id="run-experiment" value={experiment} onChange={(e) => setExperiment((e.target as HTMLSelectElement).value)}>
        <option value="">Default</option>
        {(experiments.data?.experiments ?? [])
          .filter((e) => e.display_name !== "Default")
          .map((e) => (
            <option key={e.experiment_id} value={e.experiment_id}>
              {e.display_name}
            </option>
          ))}
      </select>
      <h3>Parameters</h3>
      <ParamInputs fields={fields} setFields={setFields} problems={problems} />
      <ErrorBox error={error} title="Not started" />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? "Starting…" : "Start"}
      </button>
    </form>
  );
}
