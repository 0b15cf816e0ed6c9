#!/usr/bin/env bash
# Reproduce the paper's experiments: execute the notebooks in order with papermill.
# Run `./reproduce.sh --help` for the options.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# A relative path in these variables would name another folder in every working directory (the
# notebook kernels run in notebooks/), so one run could use two caches: make each one absolute once,
# here, against the folder this script was started in, before anything changes directory.
ABSOLUTIZED=""
for var in DDLIB_CACHE DDLIB_FIGURES DDLIB_DATA_ROOT; do
    value="${!var:-}"
    [[ -z "$value" ]] && continue
    IFS=':' read -r -a parts <<< "$value"
    absolute=()
    for part in "${parts[@]}"; do
        if [[ -n "$part" && "$part" != /* && "$part" != "~"* ]]; then part="$PWD/$part"; fi
        absolute+=("$part")
    done
    new="$(IFS=':'; echo "${absolute[*]}")"
    if [[ "$new" != "$value" ]]; then
        export "$var=$new"
        ABSOLUTIZED+="  $var=$new (was the relative $value)"$'\n'
        echo "reproduce.sh: relative \$$var made absolute: $var=$new" >&2
    fi
done
cd "$ROOT"

PROFILE="quick"
ONLY=""
IN_PLACE=0
RUN_TESTS=0
HEADLINE=0
INSTALL=1
DRY_RUN=0
RUN_DIR=""
VENV="${DDLIB_VENV:-$ROOT/.venv}"

# ---- child processes and signals -----------------------------------------------------------------
# Every process this script started (papermill, its kernel, pytest, data-build workers), deepest
# last; the subtree of $2 (the watchdog below) is left out.
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        [[ "$child" == "${2:-}" ]] && continue
        echo "$child"
        descendants "$child" "${2:-}"
    done
}
stop_children() {
    local pids
    pids="$(descendants $$ "${WATCHDOG_PID:-}")"
    [[ -z "$pids" ]] && return
    kill -TERM $pids 2>/dev/null
    sleep 1
    kill -KILL $pids 2>/dev/null
}
on_signal() {
    trap - INT TERM HUP
    echo >&2
    echo "reproduce.sh: interrupted ($1); stopping the notebook, its kernel and any workers" >&2
    # The watchdog's last snapshot still holds processes whose parent already exited (a kernel
    # outlives papermill after Ctrl-C); ask it to end them, then end what is still our child.
    if [[ -n "${WATCHDOG_PID:-}" ]] && kill -USR1 "$WATCHDOG_PID" 2>/dev/null; then
        wait "$WATCHDOG_PID" 2>/dev/null
    fi
    stop_children
    exit "$2"
}
trap 'on_signal SIGINT 130' INT
trap 'on_signal SIGTERM 143' TERM
trap 'on_signal SIGHUP 129' HUP
# SIGKILL cannot be trapped: a watchdog remembers this script's process tree every second and,
# when the script is gone (or on its request, USR1), ends what it left behind.
start_watchdog() {
    local parent=$$
    (
        trap '' INT  # Ctrl-C reaches the whole process group; the script decides
        me=$BASHPID
        tree=""
        end_tree() {
            [[ -n "$tree" ]] || exit 0
            kill -TERM $tree 2>/dev/null
            sleep 1
            kill -KILL $tree 2>/dev/null
            exit 0
        }
        trap end_tree USR1
        while kill -0 "$parent" 2>/dev/null; do
            tree="$(descendants "$parent" "$me")"
            sleep 1 & wait $!  # wait (not a foreground sleep) so USR1 is handled at once
        done
        end_tree
    ) &
    WATCHDOG_PID=$!
    trap '[[ -n "${WATCHDOG_PID:-}" ]] && kill "$WATCHDOG_PID" 2>/dev/null' EXIT
}

usage() {
    cat <<'EOF'
Usage: ./reproduce.sh [--profile smoke|quick|paper|headline] [--only NAME] [--in-place] [--run-dir DIR]
       ./reproduce.sh --tests

Sets up a virtual environment in .venv (when missing) with this project installed, then executes
the notebooks in notebooks/ in order with papermill for the chosen profile.

  --profile P   smoke (seconds per notebook: CI), quick (default; minutes per notebook on a laptop
                CPU), paper (the paper's settings; meant for a GPU) or headline (the paper's headline cell
                alone, as --headline). Profiles: ddlib/profiles/table.py.
  --only NAME   run one notebook: its file name, stem, or number prefix (e.g. 01)
  --in-place    also write the executed notebooks back into notebooks/ and the figures and tables
                into figures/<profile>/ (to refresh the committed outputs; normally only for quick)
  --run-dir D   where the executed copies go (default runs/<profile>-<date>-<time>/)
  --no-install  do not create or update .venv; use $DDLIB_VENV as it is when set, else the python3 on PATH
  --headline    only the paper's headline check (python -m ddlib.tools.headline; default profile
                headline: Colored MNIST 5 %, IPC 50, DM vs DM + KDE at the paper's settings, one GPU)
  --dry-run     list per notebook the distilled sets (sweep cells) that are cached and those that would
                be computed, with their counted cost; runs nothing (approximate: see NOTEBOOK_GROUPS in ddlib/sweep/cells.py)
  --tests       set up .venv with the test extras and run the test suite: unit and end-to-end tests,
                then every notebook under nbval in the smoke profile
  -h, --help    this text

Environment:
  DDLIB_DATA_ROOT   folder(s) (os.pathsep-separated) holding data sets (see docs/running.md, "Data")
  DDLIB_CACHE       cache of built data sets, synthetic sets, surrogates, evaluations
                    (default ~/.cache/ddlib); a rerun reuses everything cached there
  DDLIB_DEVICE      torch device (default: cuda when available, else cpu)
  DDLIB_OFFLINE=1   never try network downloads (torchvision); PyPI wheels are still tried
  DDLIB_REUSE_STALE=1  after a cosmetic code edit, reuse artifacts built by the earlier code
                    (each reuse is announced); unset, any code change recomputes what it touches
A relative DDLIB_CACHE, DDLIB_FIGURES or DDLIB_DATA_ROOT is made absolute against the folder
reproduce.sh was started in, and reported.
Figures and result tables (CSV + provenance JSON) go to <run dir>/figures/<profile>/, leaving the
committed figures/ untouched; with --in-place to figures/<profile>/ ($DDLIB_FIGURES overrides both).
EOF
}

# An option that takes a value must get one (a missing value is an error, never a default).
# usage: need_value OPTION VALUE EXAMPLE
need_value() {
    if [[ -z "$2" || "$2" == --* ]]; then
        echo "reproduce.sh: option $1 needs a value (e.g. $1 $3; see --help)" >&2
        exit 2
    fi
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile) need_value "$1" "${2:-}" smoke; PROFILE="$2"; shift 2 ;;
        --profile=*) PROFILE="${1#*=}"; need_value --profile "$PROFILE" smoke; shift ;;
        --only) need_value "$1" "${2:-}" 01; ONLY="$2"; shift 2 ;;
        --only=*) ONLY="${1#*=}"; need_value --only "$ONLY" 01; shift ;;
        --in-place) IN_PLACE=1; shift ;;
        --run-dir) need_value "$1" "${2:-}" runs/mine; RUN_DIR="$2"; shift 2 ;;
        --run-dir=*) RUN_DIR="${1#*=}"; need_value --run-dir "$RUN_DIR" runs/mine; shift ;;
        --no-install) INSTALL=0; shift ;;
        --tests) RUN_TESTS=1; shift ;;
        --headline) HEADLINE=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "reproduce.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

[[ $HEADLINE -eq 1 && $PROFILE == quick ]] && PROFILE=headline  # quick: the default, not a choice
case "$PROFILE" in
    smoke|quick|paper|headline) ;;
    *) echo "reproduce.sh: unknown profile '$PROFILE'; choose smoke, quick, paper or headline" >&2; exit 2 ;;
esac
start_watchdog


# ---- which notebooks -------------------------------------------------------------------------
mapfile -t NOTEBOOKS < <(ls notebooks/[0-9][0-9]_*.ipynb 2>/dev/null | sort)
if [[ -n "$ONLY" ]]; then
    selected=()
    for nb in "${NOTEBOOKS[@]}"; do
        name="$(basename "$nb")"
        if [[ "$name" == "$ONLY" || "${name%.ipynb}" == "$ONLY" || "$name" == "$ONLY"_* ]]; then selected+=("$nb"); fi
    done
    if [[ ${#selected[@]} -eq 0 ]]; then
        echo "reproduce.sh: no notebook matches '$ONLY'; available:" >&2
        for nb in "${NOTEBOOKS[@]}"; do echo "  $(basename "$nb")" >&2; done
        exit 2
    fi
    NOTEBOOKS=("${selected[@]}")
fi
if [[ ${#NOTEBOOKS[@]} -eq 0 ]]; then echo "reproduce.sh: no notebooks found in notebooks/" >&2; exit 1; fi

# ---- the run folder (checked before any install: a bad one fails now, not after the environment) ----
check_run_dir() {
    RUN_DIR="${RUN_DIR:-runs/$PROFILE-$(date +%Y%m%d-%H%M%S)}"
    if [[ -e "$RUN_DIR" && ! -d "$RUN_DIR" ]]; then
        echo "reproduce.sh: --run-dir $RUN_DIR is a file, not a folder; name a folder (it is created if missing)" >&2
        exit 2
    fi
    if ! mkdir -p "$RUN_DIR" 2>/dev/null; then
        echo "reproduce.sh: cannot create the run folder $RUN_DIR; name a writable folder with --run-dir" >&2
        exit 2
    fi
    local probe
    if ! probe="$(mktemp "$RUN_DIR/.write-probe.XXXXXX" 2>/dev/null)"; then
        echo "reproduce.sh: the run folder $RUN_DIR is not writable; name a writable folder with --run-dir" >&2
        exit 2
    fi
    rm -f "$probe"
}

# ---- environment ---------------------------------------------------------------------------
find_python() {
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && \
           "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "reproduce.sh: Python 3.10 or newer is needed (python3 on PATH is missing or older)" >&2
    return 1
}

setup_env() {
    local extras="$1"
    if [[ $INSTALL -eq 0 ]]; then
        if [[ -n "${DDLIB_VENV:-}" ]]; then  # an environment named by the user: use it as it is
            if [[ ! -x "$VENV/bin/python" ]]; then
                echo "reproduce.sh: --no-install with DDLIB_VENV=$DDLIB_VENV, but $VENV/bin/python does not exist;" \
                     "create that environment first, or unset DDLIB_VENV to use the python3 on PATH" >&2
                exit 2
            fi
            PY="$VENV/bin/python"
        else
            PY="$(find_python)" || exit 1
        fi
        return
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        local base
        base="$(find_python)" || exit 1
        echo "==> creating virtual environment $VENV"
        "$base" -m venv "$VENV" || { echo "reproduce.sh: could not create $VENV" >&2; exit 1; }
    fi
    PY="$VENV/bin/python"
    # Reinstall only when pyproject.toml changed or the test extras are newly needed.
    local stamp="$VENV/.ddlib-installed" hash have=""
    hash="$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' pyproject.toml)"
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    if [[ "$have" != "$hash|[test]" && "$have" != "$hash|$extras" ]]; then
        echo "==> installing the project into $VENV (pip install -e .$extras)"
        if ! "$PY" -m pip install --disable-pip-version-check -q -e ".$extras"; then
            echo "reproduce.sh: pip install failed (see above)" >&2; exit 1
        fi
        echo "$hash|$extras" > "$stamp"
    fi
    # the project's kernel for `.venv/bin/jupyter lab notebooks/`, inside the environment (idempotent)
    if [[ ! -d "$VENV/share/jupyter/kernels/ddlib" ]]; then
        "$PY" -m ipykernel install --sys-prefix --name ddlib --display-name "Python (ddlib)" >/dev/null 2>&1 || \
            echo "reproduce.sh: could not register the Jupyter kernel 'ddlib' (notebooks still run)" >&2
    fi
}

if [[ $RUN_TESTS -eq 1 ]]; then
    setup_env "[test]"
    export DDLIB_PROFILE=smoke
    echo "==> unit and end-to-end tests"
    "$PY" -m pytest tests
    rc=$?
    if [[ $rc -eq 5 ]]; then echo "reproduce.sh: pytest collected no tests: failing" >&2; exit 1; fi
    [[ $rc -ne 0 ]] && exit $rc
    echo "==> notebooks under nbval (smoke profile)"
    "$PY" -m pytest --nbval-lax -p no:cacheprovider notebooks/
    rc=$?
    if [[ $rc -eq 5 ]]; then echo "reproduce.sh: nbval collected no notebooks: failing" >&2; exit 1; fi
    exit $rc
fi

[[ $RUN_TESTS -eq 0 && $HEADLINE -eq 0 && $DRY_RUN -eq 0 ]] && check_run_dir
setup_env "[notebooks]"

if [[ $HEADLINE -eq 1 ]]; then
    exec "$PY" -m ddlib.tools.headline --profile "$PROFILE"
fi

if [[ $DRY_RUN -eq 1 ]]; then
    export DDLIB_PROFILE="$PROFILE"
    echo "==> dry run, profile $PROFILE (approximate: only distilled + evaluated sets recorded by the sweep count as cached)"
    for nb in "${NOTEBOOKS[@]}"; do
        name="$(basename "$nb")"
        echo "==> $name"
        case "${name:0:2}" in
            01|02|03) "$PY" -m ddlib.tools.sweep --profile "$PROFILE" --notebook "${name:0:2}" --dry-run --brief | sed 's/^/  /' ;;
            *) echo "  builds or loads the data sets and figures (data sets are cached once built)" ;;
        esac
    done
    exit 0
fi

export DDLIB_PROFILE="$PROFILE"
# A plain run leaves the committed figures/ alone: its figures and tables go into its run folder, beside
# its notebooks; --in-place refreshes the committed ones. An explicit $DDLIB_FIGURES always wins.
if [[ -z "${DDLIB_FIGURES:-}" && $IN_PLACE -eq 0 ]]; then
    case "$RUN_DIR" in
        /*) export DDLIB_FIGURES="$RUN_DIR/figures" ;;
        *) export DDLIB_FIGURES="$ROOT/$RUN_DIR/figures" ;;
    esac
fi
FIGURES_SHOWN="${DDLIB_FIGURES:-$ROOT/figures}/$PROFILE/"
FIGURES_SHOWN="${FIGURES_SHOWN#"$ROOT/"}"
echo "==> profile $PROFILE; executed notebooks go to $RUN_DIR; figures and tables to $FIGURES_SHOWN"

declare -a SUMMARY=()
status=0
for nb in "${NOTEBOOKS[@]}"; do
    name="$(basename "$nb")"
    out="$RUN_DIR/$name"
    echo "$(date +%H:%M:%S) ==> $name"
    start=$(date +%s)
    # The profile reaches the notebook through $DDLIB_PROFILE, not an injected parameter cell, so the
    # executed notebooks can be committed and nbval can rerun them in another profile. The runner
    # prints each cell, the elapsed time (and the last run's) and the progress of long steps.
    "$PY" -m ddlib.tools.run_notebook "$nb" "$out" --cwd notebooks 2>&1 | grep --line-buffered -v "Kernel is running over TCP"
    rc=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    if [[ $rc -ne 0 ]]; then
        cell="$("$PY" - "$out" <<'PYEOF'
import sys, nbformat
try:
    nb = nbformat.read(sys.argv[1], as_version=4)
except Exception:
    print("unknown (no executed copy)"); sys.exit()
code_cells = [c for c in nb.cells if c.cell_type == "code"]
for i, c in enumerate(code_cells, 1):
    for o in c.get("outputs", []):
        if o.get("output_type") == "error":
            print(f"code cell {i} ({o.get('ename')}: {str(o.get('evalue'))[:200]})"); sys.exit()
print("unknown")
PYEOF
)"
        echo "reproduce.sh: $name FAILED after ${secs}s in $cell" >&2
        echo "  executed copy with the error: $out" >&2
        SUMMARY+=("$(printf '%-40s %8ss  FAILED' "$name" "$secs")")
        status=1
        break
    fi
    # keep only the final state of each progress bar and drop papermill's injected cell
    "$PY" -m ddlib.tools.notebooks "$out" >/dev/null || echo "reproduce.sh: could not tidy $out" >&2
    if [[ $IN_PLACE -eq 1 ]]; then cp "$out" "$nb"; fi
    SUMMARY+=("$(printf '%-40s %8ss  ok' "$name" "$secs")")
done

echo
echo "==> summary (profile $PROFILE)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
# the same lines, for `python -m ddlib.tools.report --run-times` (the README's run-time table)
printf '%s\n' "profile $PROFILE" "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "${SUMMARY[@]}" > "$RUN_DIR/summary.txt"
if [[ -n "$ABSOLUTIZED" ]]; then  # recorded beside the run: which folders it really used
    printf '  relative paths made absolute at the start:\n%s' "$ABSOLUTIZED"
    printf '%s' "$ABSOLUTIZED" > "$RUN_DIR/absolute_paths.txt"
fi
echo "  executed notebooks: $RUN_DIR/"
echo "  figures and tables: $FIGURES_SHOWN"
[[ $IN_PLACE -eq 1 ]] && echo "  committed notebooks refreshed in notebooks/"
exit $status
