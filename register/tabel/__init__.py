"""The electronic табель: calendars, child-day status, exports, approval, and the padding detectors."""
