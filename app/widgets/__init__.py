"""Small widgets shared by the screens: the context meter and the model bar."""
