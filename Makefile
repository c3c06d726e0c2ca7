# The two commands a newcomer needs: `make run` starts the shop, `make test` tests it.
# Both create the virtualenv and install the pinned development set on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pasar-installed
PACKAGES := packages/kit services/users services/products services/orders web cli
SUITES   := packages/kit/tests services/users/tests services/products/tests \
            services/orders/tests web/tests cli/tests tests/contract tests/e2e tests/browser \
            tests/deploy

.PHONY: run test test-mariadb test-postgres test-all lint typecheck bench messages screenshots clean

run: $(STAMP)
	$(BIN)/pasar up

test: $(STAMP)
	$(BIN)/pytest

test-mariadb: $(STAMP)
	PASAR_TEST_DB=mariadb $(BIN)/pytest

test-postgres: $(STAMP)
	PASAR_TEST_DB=postgres $(BIN)/pytest

test-all: test test-mariadb test-postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy -p pasar_kit -p pasar_users -p pasar_products -p pasar_orders -p pasar_web -p pasar_cli
	@# The tests too, one suite a run: each has its own conftest.py and support module.
	@for suite in $(SUITES) bench; do \
		echo "mypy $$suite"; MYPYPATH=$$suite $(BIN)/mypy $$suite || exit 1; done

# The reference benchmark (bench/README.md): every scenario, concurrency and database,
# written to bench/results/. Needs wrk (apt-get install wrk); BENCH_DB=sqlite for one.
BENCH_DB ?= sqlite mariadb postgres
bench: $(STAMP) $(VENV)/.bench-installed
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/matrix.py --db $(BENCH_DB)

$(VENV)/.bench-installed: $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $@

# Collect the texts of the storefront and of the users service's mail into their
# Indonesian catalogues; translate what is new.
messages: $(STAMP)
	cd web && ../$(BIN)/pybabel extract -F babel.cfg -k lazy --sort-output --no-location \
		--omit-header -o ../$(VENV)/messages.pot . && \
	../$(BIN)/pybabel update -l id -i ../$(VENV)/messages.pot -d pasar_web/locale \
		--no-fuzzy-matching --ignore-obsolete
	cd services/users && ../../$(BIN)/pybabel extract -F babel.cfg -k lazy --sort-output \
		--no-location --omit-header -o ../../$(VENV)/users-messages.pot . && \
	../../$(BIN)/pybabel update -l id -i ../../$(VENV)/users-messages.pot \
		-d pasar_users/locale --no-fuzzy-matching --ignore-obsolete

# Pictures of the main pages for the README (needs Chromium: apt-get install chromium).
screenshots: $(STAMP)
	PYTHONPATH=tests:tests/e2e:tests/browser $(BIN)/python tests/browser/screenshots.py docs/screenshots

# The development set: the runtime pins (requirements.txt, all the image installs) and the
# tools and test libraries (requirements-dev.txt starts with -r requirements.txt).
$(STAMP): requirements.txt requirements-dev.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@# Debian's python3 may lack ensurepip (python3-venv): then make the venv without
	@# pip and let the system pip put pip into it.
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV); }
	$(BIN)/python -m pip --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip --python $(BIN)/python install --quiet pip
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache
