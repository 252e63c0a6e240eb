// One artifact, rendered, with its lineage as a graph: the producer's inputs, the producer,
// the artifact, and every task that consumed it (in any run).
import { get, routes, type ArtifactWithLineage } from "../api";
import { ArtifactView, shortType } from "../components/Artifact";
import { Dag, type DagEdge, type DagItem } from "../components/Dag";
import { ErrorBox, Loading } from "../components/common";
import { useLoad } from "../hooks";
import { href } from "../router";

export function ArtifactPage(props: { artifactId: string }) {
  const loaded = useLoad(() => get<ArtifactWithLineage>(routes.artifact(props.artifactId)), [props.artifactId]);
  if (loaded.error) return <ErrorBox error={loaded.error} title={`Cannot show artifact ${props.artifactId}`} />;
  if (!loaded.data) return <Loading what="the artifact" />;
  const a = loaded.data;
  const items: DagItem[] = [];
  const edges: DagEdge[] = [];
  const me = `artifact-${a.artifact_id}`;
  items.push({ id: me, label: a.display_name || `#${a.artifact_id}`, detail: shortType(a.type), kind: "artifact current", state: "ARTIFACT", stateless: true, group: false });
  const producer = a.producers[0];
  const stepId = (kind: string, s: { execution_id: number }) => `${kind}-${s.execution_id}`;
  const links = new Map<string, string>();
  if (producer) {
    const id = stepId("exec", producer);
    items.push({ id, label: producer.task || `execution ${producer.execution_id}`, detail: `produced · ${producer.name}`, kind: "container", state: producer.state, group: false });
    edges.push({ from: id, to: me });
    if (producer.run_id) links.set(id, href(`/runs/details/${producer.run_id}`, { task: producer.task }));
    for (const input of a.inputs) {
      const inputId = `artifact-${input.artifact_id}`;
      items.push({ id: inputId, label: input.display_name || input.name || `#${input.artifact_id}`, detail: `${shortType(input.type)} · ${input.name}`, kind: "artifact", state: "ARTIFACT", stateless: true, group: false });
      edges.push({ from: inputId, to: id });
      links.set(inputId, href(`/artifacts/${input.artifact_id}`));
    }
  }
  for (const reuse of a.producers.slice(1)) {
    const id = stepId("reuse", reuse);
    items.push({ id, label: reuse.task, detail: "reused from cache", kind: "container", state: "CACHED", group: false });
    edges.push({ from: me, to: id });
    if (reuse.run_id) links.set(id, href(`/runs/details/${reuse.run_id}`, { task: reuse.task }));
  }
  for (const consumer of a.consumers) {
    const id = stepId("use", consumer);
    items.push({ id, label: consumer.task || `execution ${consumer.execution_id}`, detail: `consumed as ${consumer.name}`, kind: "container", state: consumer.state, group: false });
    edges.push({ from: me, to: id });
    if (consumer.run_id) links.set(id, href(`/runs/details/${consumer.run_id}`, { task: consumer.task }));
  }
  return (
    <div class="artifact-page">
      <div class="page-header">
        <div>
          <p class="crumbs">
            {a.run_id ? <a href={href(`/runs/details/${a.run_id}`)}>Run</a> : "Artifact"}
          </p>
          <h1>
            {a.display_name || `Artifact ${a.artifact_id}`} <span class="type-tag">{shortType(a.type)}</span>
          </h1>
        </div>
      </div>
      <section aria-label="Lineage" class="lineage">
        <h2>Lineage</h2>
        <p class="muted">What produced this artifact (and from which inputs), and what used it. Select a step to open its run.</p>
        <Dag
          label="Lineage graph"
          items={items}
          edges={edges}
          onSelect={(id) => {
            const target = links.get(id);
            if (target) location.hash = target;
          }}
        />
      </section>
      <ArtifactView artifact={a} lineageLink={false} />
    </div>
  );
}
