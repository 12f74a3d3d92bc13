# Sourced by the other scripts: the project virtualenv and the variables tch's build needs
# to take libtorch from PyPI's torch wheel (LIBTORCH_USE_PYTORCH).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$REPO_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export PYTHON="$VIRTUAL_ENV/bin/python"
