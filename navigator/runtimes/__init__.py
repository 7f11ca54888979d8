"""Runtime session code shared by the conversion paths and the python-backend twin.

Each module builds one runtime's session from a trial's params (the dict the path's runner gets) and
calls it: ort (ONNX Runtime), openvino (OpenVINO), torch (PyTorch). The package imports nothing from
navigator, only the standard library, NumPy and, inside functions, the framework: the twin
(navigator/triton/templates/model.py) ships a copy of it in the Triton version directory and runs the
trial's own code on the server, where navigator is not installed.
"""
