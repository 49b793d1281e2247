"""Pure planning: declared set + live state + previous inventory → an ordered change set. No I/O."""
