"""Streamlit helpers shared by the workbench pages (Home.py, pages/): sidebar, status,
charts and the DPE scale. Logic lives in core/; this package only draws."""
