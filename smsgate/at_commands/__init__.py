"""smsgate.at_commands"""
