"""smsgate.web"""
