"""Small Qt-free pieces shared by every core package: data locations and task handles."""
