class DpeError(Exception):
    """An error the user caused or can fix (bad source, unknown run, no champion...).

    Its message is shown as is: one line that names the problem, never a traceback.
    """
