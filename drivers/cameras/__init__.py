"""Cameras behind one small contract (:class:`robolearn.drivers.cameras.base.Camera`).

* :mod:`robolearn.drivers.cameras.realsense` — Intel RealSense RGB-D through ``pyrealsense2``
  (live by serial, playback of recordings, the SDK's software device);
* :mod:`robolearn.drivers.cameras.opencv` — V4L2 webcams and video files through OpenCV;
* :mod:`robolearn.drivers.cameras.software_realsense` — an emulated RealSense for tests and demos;
* :mod:`robolearn.drivers.cameras.pointcloud` — depth → points by back-projection;
* :mod:`robolearn.drivers.cameras.v4l2` — list /dev/video* devices and their modes.

The contract is imported here; the drivers are imported from their modules (they load
``pyrealsense2`` and ``cv2``)::

    from robolearn.drivers.cameras.realsense import RealSenseCamera, RealSenseConfig
    with RealSenseCamera(RealSenseConfig(serial="123456789012")) as camera:
        frame = camera.read()  # frame.rgb (H, W, 3) uint8, frame.depth_m (H, W) float32
"""

from robolearn.drivers.cameras.base import Camera, CameraFrame, EndOfStream, LatestFrame
from robolearn.drivers.cameras.pointcloud import depth_to_colored_points, depth_to_points

__all__ = [
    "Camera",
    "CameraFrame",
    "EndOfStream",
    "LatestFrame",
    "depth_to_colored_points",
    "depth_to_points",
]
