# Two commands do everything on a fresh clone:
#   make demo   create .venv (Python >= 3.12), install, run the default case
#   make test   create .venv, install, run the serial and the `mpirun -n 2` tests
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: demo test install lint format bench bench-peers bench-studies clean

$(PY):
	@PYBIN=$$(scripts/find-python.sh) || exit 1; \
	echo "creating $(VENV) with $$PYBIN"; \
	"$$PYBIN" -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml setup.py $(wildcard ext/*.pyx) $(wildcard ext/*.pxd)
	$(PY) -m pip install -q --upgrade pip setuptools wheel "cython>=3.0" "numpy>=1.26"
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/electrofem demo -o $(DEMO_OUT) --overwrite

test: install
	$(PY) -m pytest -q
	timeout 1200 $(VENV)/bin/mpirun -n 2 $(PY) -m pytest -q -m mpi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# BENCHMARKS.md figures (each script writes benchmarks/results/*.json and prints its table)
bench: install
	$(PY) benchmarks/bench_packing.py
	$(PY) benchmarks/bench_mesh.py
	$(PY) benchmarks/bench_kernels.py
	$(PY) benchmarks/bench_transport.py
	$(PY) benchmarks/bench_discharge.py --c-rates 1 --contacts gap --cbd 1
	$(PY) benchmarks/bench_vof_validation.py
	$(PY) benchmarks/bench_vof_validation.py --washburn
	$(PY) benchmarks/bench_vof_3d.py

# voxel peers (TauFactor, PoreSpy: installed here only), after bench_transport.py
bench-peers: install
	$(PY) -m pip install -q -r benchmarks/requirements-peers.txt
	$(PY) benchmarks/bench_peers.py --res 100 200

# the long studies (about an hour each on 2 cores); PyBaMM is an optional extra
bench-studies: install
	$(PY) benchmarks/bench_paper_discharge.py --workers 2
	$(PY) -m pip install -q -e ".[pybamm]"
	$(PY) benchmarks/bench_pybamm_crosscheck.py
	$(PY) benchmarks/bench_infiltration.py --steps 300 --capillary-factors 20,200,2000,0
	$(PY) benchmarks/bench_wetting_study.py --workers 2 --tag _h2
	$(VENV)/bin/mpirun -n 2 $(PY) benchmarks/bench_wetting_study.py --only preset=L-S \
		--set mesh.size=1.0 --set infiltration.stop_at_breakthrough=true \
		--out /tmp/electrofem-perf --tag _perf_h1_n2
	$(PY) benchmarks/bench_coupled_study.py --workers 2
	$(VENV)/bin/electrofem study examples/study_wetting_map.toml \
		-o benchmarks/results/wetting_map_out --workers 2
	cp benchmarks/results/wetting_map_out/wetting_map.* benchmarks/results/
	$(PY) benchmarks/bench_scaling_model.py

clean:
	rm -rf build *.egg-info electrofem/*.so ext/*.c $(DEMO_OUT)
