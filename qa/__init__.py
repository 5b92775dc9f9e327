"""Post-call quality assurance: score every ended call on an editable rubric, with evidence."""
