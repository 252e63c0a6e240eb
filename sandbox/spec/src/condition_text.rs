//! A task's condition as its user wrote it: the compiler's CEL names inputs by channel
//! (`inputs.parameter_values['pipelinechannel--flip-coin-Output']`); people wrote
//! `flip_coin.output`. Messages show the task, output or parameter each channel carries.

use crate::ir::TaskInputs;

const PREFIX: &str = "inputs.parameter_values[";
const CHANNEL: &str = "pipelinechannel--";

/// `condition` with every input reference replaced by what it carries: a task's output
/// (`flip-coin.output`, `train.outputs['loss']`), a pipeline parameter (`threshold`), or the
/// loop's item.
pub fn readable_condition(condition: &str, inputs: &TaskInputs) -> String {
    let mut out = String::with_capacity(condition.len());
    let mut rest = condition;
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at]);
        let after = &rest[at + PREFIX.len()..];
        let Some(quote) = after.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            out.push_str(PREFIX);
            rest = after;
            continue;
        };
        let Some(close) = after[1..].find(quote) else {
            out.push_str(&rest[at..]);
            return out;
        };
        let name = &after[1..1 + close];
        let tail = &after[1 + close + 1..];
        let Some(tail) = tail.strip_prefix(']') else {
            out.push_str(&rest[at..at + PREFIX.len() + close + 2]);
            rest = tail;
            continue;
        };
        out.push_str(&carried(name, inputs));
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn carried(name: &str, inputs: &TaskInputs) -> String {
    let plain = |text: &str| -> String {
        let text = text.strip_prefix(CHANNEL).unwrap_or(text);
        if text.starts_with("loop-item-param") {
            "the loop item".to_owned()
        } else if let Some(task) = text.strip_suffix("-Output") {
            // A task's output handed down through a nested pipeline's input (`<task>-Output`).
            format!("{task}.output")
        } else {
            text.to_owned()
        }
    };
    let Some(input) = inputs.parameters.get(name) else {
        return plain(name);
    };
    if let Some(output) = &input.task_output_parameter {
        return if output.output_parameter_key == "Output" {
            format!("{}.output", output.producer_task)
        } else {
            format!(
                "{}.outputs['{}']",
                output.producer_task, output.output_parameter_key
            )
        };
    }
    match &input.component_input_parameter {
        Some(parameter) => plain(parameter),
        None => plain(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_read_as_what_they_carry() {
        let inputs: TaskInputs = serde_json::from_value(serde_json::json!({"parameters": {
            "pipelinechannel--flip-coin-Output": {"taskOutputParameter": {"producerTask": "flip-coin", "outputParameterKey": "Output"}},
            "pipelinechannel--train-loss": {"taskOutputParameter": {"producerTask": "train", "outputParameterKey": "loss"}},
            "pipelinechannel--threshold": {"componentInputParameter": "pipelinechannel--threshold"},
            "pipelinechannel--loop-item-param-1": {"componentInputParameter": "pipelinechannel--loop-item-param-1"},
            "pipelinechannel--roll-Output": {"componentInputParameter": "pipelinechannel--roll-Output"}
        }}))
        .unwrap();
        let shown = |cel: &str| readable_condition(cel, &inputs);
        assert_eq!(
            shown("inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads'"),
            "flip-coin.output == 'heads'"
        );
        assert_eq!(
            shown("double(inputs.parameter_values['pipelinechannel--train-loss']) < double(inputs.parameter_values[\"pipelinechannel--threshold\"])"),
            "double(train.outputs['loss']) < double(threshold)"
        );
        assert_eq!(
            shown("int(inputs.parameter_values['pipelinechannel--loop-item-param-1']) > 2"),
            "int(the loop item) > 2"
        );
        assert_eq!(
            shown("int(inputs.parameter_values['pipelinechannel--roll-Output']) > 10"),
            "int(roll.output) > 10"
        );
        assert_eq!(shown("!(true)"), "!(true)");
        assert_eq!(
            shown("inputs.parameter_values['unterminated"),
            "inputs.parameter_values['unterminated"
        );
    }
}
