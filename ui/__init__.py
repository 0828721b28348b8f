"""Streamlit helpers of the workbench (app.py, views/): the frame, statuses, links,
formatting, charts and the DPE scale. Logic lives in core/; this package only draws."""
