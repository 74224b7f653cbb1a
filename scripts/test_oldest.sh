# Sourced by scripts/test: the Starlette and FastAPI integration tests, also against the
# oldest versions pyproject.toml allows (starlette>=0.40, fastapi>=0.115), in .venv-oldest
# (made once, remade when pyproject.toml or this file changes). Offline without wheels it
# is skipped with a message, except under CI=true, where it must run.
# FastAPI 0.115.0 and 0.115.1 need Starlette < 0.39, below what authguard allows: 0.115.2
# is the oldest FastAPI that can be installed with it (``==0.115.*`` would take the newest
# patch release instead).
OLDEST_PINS=("starlette==0.40.0" "fastapi==0.115.2")
# What the tests below need besides authguard[all,mpp] (the versions of [dev]), and
# python-multipart, which the test OAuth issuer's form parsing needs.
OLDEST_TEST_DEPS=("pytest>=8" "pytest-asyncio>=0.24" "hypothesis>=6.100" "time-machine>=2.14"
                  "jsonschema>=4.23" "uvicorn[standard]>=0.30" "python-multipart")

oldest_files() {
  # every test module that uses Starlette or FastAPI, but the MCP one (its own extra)
  grep -l -E '^(from|import) (fastapi|starlette)' tests/test_*.py | grep -v 'test_mcp_e2e.py'
}

run_oldest() {
  local venv=.venv-oldest stamp=.venv-oldest/.authguard-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] ||
      [ scripts/test_oldest.sh -nt "$stamp" ]; then
    echo "==> installing authguard with ${OLDEST_PINS[*]} into $venv"
    rm -rf "$venv"
    if ! { "$PYTHON" -m venv "$venv" &&
           "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
             -e ".[all,mpp]" "${OLDEST_PINS[@]}" "${OLDEST_TEST_DEPS[@]}"; }; then
      rm -rf "$venv"
      if [ "${CI:-}" = "true" ]; then
        echo "oldest versions: FAILED to install ${OLDEST_PINS[*]} (needed under CI=true)"
        return 1
      fi
      echo "oldest versions: SKIPPED (could not install ${OLDEST_PINS[*]}: offline, no wheels?)"
      return 0
    fi
    touch "$stamp"
  fi
  echo "==> pytest against $("$venv/bin/python" -c 'import fastapi, starlette
print(f"fastapi {fastapi.__version__}, starlette {starlette.__version__}")')"
  # Starlette 0.40 imports python-multipart by its old name, which now warns.
  "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    -W "ignore:Please use \`import python_multipart\` instead.:PendingDeprecationWarning" \
    -m "not e2e and not redis and not browser" $(oldest_files)
}
