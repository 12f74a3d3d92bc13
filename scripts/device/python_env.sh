# Sourced by the device scripts (run from the repository root on the device tool's GPU machine,
# which has PyTorch but no network): installs the carried wheels (.whl/: the official package
# and its pure-Python needs) into /tmp/site, puts them on PYTHONPATH, and sets TORCH_LIB to the
# machine's libtorch. Where OpenCV is missing, a stand-in cv2 lets the official package import
# (its input processor imports cv2 at module level; model-level runs never call it).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if ! python3 -c 'import cv2' 2>/dev/null; then
  mkdir -p /tmp/site/cv2
  printf 'class ipp:\n    @staticmethod\n    def setUseIPP(flag):\n        pass\ndef __getattr__(name):\n    raise ImportError("OpenCV is not installed on this machine")\n' > /tmp/site/cv2/__init__.py
fi
export TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
