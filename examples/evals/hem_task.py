"""An inspect-ai task in the shape of seed 004: data_path, prompt and system_prompt come in as task
arguments, the model answers, `match` scores it.

By hand: `inspect eval examples/evals/hem_task.py@hem_pn --model hf/local -M model_path=DIR
-T data_path=examples/data/hem_inspect.json -T system_prompt="You are a materials scientist."`
"""

from inspect_ai import Task, task
from inspect_ai.dataset import FieldSpec, json_dataset
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import match
from inspect_ai.solver import generate, prompt_template, system_message


@task
def hem_pn(data_path: str, prompt: str = "{prompt}", system_prompt: str = "") -> Task:
    solver = [prompt_template(prompt), generate()]
    if system_prompt:
        solver.insert(0, system_message(system_prompt))
    return Task(
        dataset=json_dataset(data_path, FieldSpec(input="input", target="target", id="id")),
        solver=solver,
        scorer=match(location="begin"),  # the trained answer is the label alone: "P" or "N"
        config=GenerateConfig(max_tokens=4, temperature=0.0),
    )
