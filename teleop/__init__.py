"""Teleoperation devices (keyboard, SpaceMouse, gamepad, leader arm) producing end-effector
deltas or joint targets plus gripper. The scripted experts of :mod:`envs.experts` are the
first demonstrators; physical devices land with the recorder.
"""
