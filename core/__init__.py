"""DPE workbench core: all logic, importable without Streamlit or FastAPI."""
