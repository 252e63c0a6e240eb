// Typed inputs for a pipeline's parameters, from its spec: defaults filled in, every value
// checked before anything is sent.
import { useState } from "preact/hooks";
import { value } from "../format";

export type ParameterSpec = {
  parameterType?: string;
  defaultValue?: unknown;
  isOptional?: boolean;
  description?: string;
};

export function rootParameters(spec: unknown): Record<string, ParameterSpec> {
  const s = spec as { pipeline_spec?: unknown; root?: { inputDefinitions?: { parameters?: Record<string, ParameterSpec> } } };
  const inner = (s?.pipeline_spec ?? s) as typeof s;
  return inner?.root?.inputDefinitions?.parameters ?? {};
}

type Field = { name: string; spec: ParameterSpec; text: string; checked: boolean };

/** The form's starting values: `values` where given (a run's, to run it again), else defaults. */
function initial(params: Record<string, ParameterSpec>, values?: Record<string, unknown>): Field[] {
  return Object.entries(params).map(([name, spec]) => {
    const start = values && name in values ? values[name] : spec.defaultValue;
    return {
      name,
      spec,
      text: start === undefined ? "" : typeof start === "string" ? start : JSON.stringify(start, null, spec.parameterType === "STRUCT" || spec.parameterType === "LIST" ? 1 : 0),
      checked: start === true,
    };
  });
}

/** The parameter values, or the problems by parameter name. */
export function collect(fields: Field[]): { values: Record<string, unknown>; problems: Record<string, string> } {
  const values: Record<string, unknown> = {};
  const problems: Record<string, string> = {};
  for (const f of fields) {
    const type = f.spec.parameterType ?? "STRING";
    const hasDefault = f.spec.defaultValue !== undefined || f.spec.isOptional;
    if (type === "BOOLEAN") {
      values[f.name] = f.checked;
      continue;
    }
    const text = f.text.trim();
    if (!text && type !== "STRING") {
      if (!hasDefault) problems[f.name] = "required";
      continue;
    }
    switch (type) {
      case "NUMBER_INTEGER":
        if (!/^-?\d+$/.test(text)) problems[f.name] = "a whole number";
        else values[f.name] = Number(text);
        break;
      case "NUMBER_DOUBLE":
        if (text === "" || !Number.isFinite(Number(text))) problems[f.name] = "a number";
        else values[f.name] = Number(text);
        break;
      case "LIST":
      case "STRUCT":
        try {
          const v = JSON.parse(text);
          if (type === "LIST" ? !Array.isArray(v) : !(v && typeof v === "object" && !Array.isArray(v)))
            problems[f.name] = type === "LIST" ? "a JSON list, like [1, 2]" : 'a JSON object, like {"a": 1}';
          else values[f.name] = v;
        } catch (e) {
          problems[f.name] = `JSON that parses: ${(e as Error).message}`;
        }
        break;
      default:
        if (!f.text && !hasDefault) problems[f.name] = "required";
        else if (f.text || f.spec.defaultValue === undefined) values[f.name] = f.text;
    }
  }
  return { values, problems };
}

export function useParamFields(params: Record<string, ParameterSpec>, values?: Record<string, unknown>) {
  return useState<Field[]>(() => initial(params, values));
}

export function ParamInputs(props: {
  fields: Field[];
  setFields: (f: Field[]) => void;
  problems: Record<string, string>;
}) {
  const { fields, setFields, problems } = props;
  if (!fields.length) return <p class="muted">This pipeline takes no parameters.</p>;
  const update = (i: number, change: Partial<Field>) => setFields(fields.map((f, j) => (i === j ? { ...f, ...change } : f)));
  return (
    <div class="param-inputs">
      {fields.map((f, i) => {
        const type = f.spec.parameterType ?? "STRING";
        const id = `param-${f.name}`;
        const problem = problems[f.name];
        const describedBy = problem ? `${id}-problem` : undefined;
        return (
          <div class={`param${problem ? " invalid" : ""}`} key={f.name}>
            <label for={id}>
              {f.name} <span class="type-tag">{type.toLowerCase().replace("number_", "")}</span>
              {f.spec.defaultValue === undefined && !f.spec.isOptional ? <span class="required"> required</span> : null}
            </label>
            {type === "BOOLEAN" ? (
              <input id={id} name={f.name} type="checkbox" checked={f.checked} onChange={(e) => update(i, { checked: (e.target as HTMLInputElement).checked })} />
            ) : type === "LIST" || type === "STRUCT" ? (
              <textarea id={id} name={f.name} rows={3} value={f.text} aria-invalid={!!problem} aria-describedby={describedBy} onInput={(e) => update(i, { text: (e.target as HTMLTextAreaElement).value })} />
            ) : type.startsWith("NUMBER") ? (
              <input
                id={id}
                name={f.name}
                type="number"
                step={type === "NUMBER_INTEGER" ? "1" : "any"}
                value={f.text}
                aria-invalid={!!problem}
                aria-describedby={describedBy}
                onInput={(e) => update(i, { text: (e.target as HTMLInputElement).value })}
              />
            ) : (
              <input
                id={id}
                name={f.name}
                type="text"
                value={f.text}
                aria-invalid={!!problem}
                aria-describedby={describedBy}
                onInput={(e) => update(i, { text: (e.target as HTMLInputElement).value })}
              />
            )}
            {f.spec.description ? <p class="muted">{f.spec.description}</p> : null}
            {f.spec.defaultValue !== undefined ? <p class="muted">Default: {value(f.spec.defaultValue)}</p> : null}
            {problem ? (
              <p class="problem" id={describedBy} role="alert">
                Expected {problem}.
              </p>
            ) : null}
          </div>
        );
      })}
    </div>
  );
}
